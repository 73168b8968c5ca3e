"""Attacks on what a workspace may run (C2 of issue 9): only operators register programs."""

import json

import pytest

from api.app import create_app
from models.connectors import ConnectorsFileInvalid, read_connectors_file

CONNECTORS = "/api/admin/connectors"
SOURCES = "/api/workspaces/ws-a/data-sources"
ERP = {
    "name": "erp",
    "executable": "/opt/exporters/erp",
    "args": ["--json-lines"],
    "configSchema": {
        "type": "object",
        "properties": {"region": {"enum": ["eu", "us"]}, "batch": {"type": "integer"}},
        "required": ["region"],
        "additionalProperties": False,
    },
    "secretNames": ["ERP_PASSWORD"],
}


@pytest.fixture
async def admin(token_for):
    return await token_for(admin=True)


async def test_a_workspace_token_cannot_list_or_register_connectors(client, ws):
    assert (await client.get(CONNECTORS, headers=ws.headers)).status == 403
    resp = await client.post(
        CONNECTORS, json={**ERP, "name": "evil", "executable": "/bin/sh"}, headers=ws.headers
    )
    assert resp.status == 403
    assert (await client.get(CONNECTORS)).status == 401
    assert (await client.delete(f"{CONNECTORS}/http", headers=ws.headers)).status == 403


async def test_a_workspace_token_cannot_give_an_argv(client, ws):
    body = {"name": "x", "type": "command", "argv": ["/bin/sh", "-c", "cat /proc/$PPID/environ"]}
    resp = await client.post(SOURCES, json=body, headers=ws.headers)
    assert resp.status == 422
    details = {item["field"]: item["message"] for item in (await resp.json())["error"]["details"]}
    assert details["command.argv"] == "unknown field"


async def test_admins_register_list_get_and_delete_connectors(client, admin):
    resp = await client.post(CONNECTORS, json=ERP, headers=admin)
    assert resp.status == 201, await resp.text()
    assert resp.headers["Location"] == f"{CONNECTORS}/erp"
    listed = await (await client.get(CONNECTORS, headers=admin)).json()
    assert {(item["name"], item["origin"]) for item in listed["items"]} == {
        ("http", "builtin"),
        ("erp", "api"),
    }
    got = await (await client.get(f"{CONNECTORS}/erp", headers=admin)).json()
    assert got["args"] == ["--json-lines"] and got["configSchema"] == ERP["configSchema"]
    assert (await client.post(CONNECTORS, json=ERP, headers=admin)).status == 409
    assert (await client.delete(f"{CONNECTORS}/http", headers=admin)).status == 409
    assert (await client.delete(f"{CONNECTORS}/erp", headers=admin)).status == 204
    assert (await client.get(f"{CONNECTORS}/erp", headers=admin)).status == 404


@pytest.mark.parametrize(
    "change",
    [
        {"executable": "relative/path"},
        {"args": ["a\x00b"]},
        {"configSchema": {"type": "no-such-type"}},
        {"name": "Has Spaces"},
    ],
)
async def test_a_malformed_connector_is_refused(client, admin, change):
    assert (await client.post(CONNECTORS, json={**ERP, **change}, headers=admin)).status == 422


async def test_a_source_config_is_checked_against_the_connector_schema(client, ws, admin):
    await client.post(CONNECTORS, json=ERP, headers=admin)
    good = {"name": "erp", "type": "command", "connector": "erp", "config": {"region": "eu"}}
    resp = await client.post(
        SOURCES, json={**good, "secrets": {"ERP_PASSWORD": "correct-horse"}}, headers=ws.headers
    )
    assert resp.status == 201, await resp.text()
    shown = await resp.json()
    assert shown["secrets"] == {"ERP_PASSWORD": "***"} and shown["config"] == {"region": "eu"}
    for bad in (
        {**good, "config": {"region": "mars-secret-value"}},
        {**good, "config": {"region": "eu", "argv": ["/bin/sh"]}},
        {**good, "connector": "nope"},
        {**good, "connector": "http"},
        {**good, "secrets": {"LD_PRELOAD": "/tmp/evil.so-x"}},
    ):
        resp = await client.post(SOURCES, json=bad, headers=ws.headers)
        assert resp.status == 422, bad
        assert "mars-secret-value" not in await resp.text()


def test_the_operator_catalog_reads_json_and_toml(tmp_path):
    as_json = tmp_path / "connectors.json"
    as_json.write_text(json.dumps([ERP]))
    assert [entry["name"] for entry in read_connectors_file(as_json)] == ["erp"]
    as_toml = tmp_path / "connectors.toml"
    as_toml.write_text(
        '[[connectors]]\nname = "erp"\nexecutable = "/opt/erp"\nargs = ["--x"]\n'
        '[connectors.configSchema]\ntype = "object"\n'
    )
    (entry,) = read_connectors_file(as_toml)
    assert (
        entry["args"] == ["--x"] and entry["configSchema"] == {"type": "object"} and entry["origin"] == "file"
    )
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps([{**ERP, "executable": "sh"}]))
    with pytest.raises(ConnectorsFileInvalid, match="entry 0"):
        read_connectors_file(broken)


async def test_file_connectors_are_listed_and_cannot_be_deleted_through_the_api(
    settings, db, clock, secrets, aiohttp_client, token_for, tmp_path
):
    path = tmp_path / "connectors.json"
    path.write_text(json.dumps([ERP]))
    app = create_app(
        settings.model_copy(update={"syncjobs_connectors_file": str(path)}),
        db=db,
        clock=clock,
        secrets=secrets,
    )
    client = await aiohttp_client(app)
    admin = await token_for(admin=True)
    got = await (await client.get(f"{CONNECTORS}/erp", headers=admin)).json()
    assert got["origin"] == "file"
    assert (await client.delete(f"{CONNECTORS}/erp", headers=admin)).status == 409
