"""Attacks on stored secrets through the API (H3 and M3 of issue 9): re-targeting a masked secret, secrets
in query strings and params shown in clear, short secrets, and every form a secret could leak in."""

import base64
from urllib.parse import quote

import pytest
from bson import ObjectId

from tests.factories import destination_body, http_source_body

SOURCES = "/api/workspaces/ws-a/data-sources"
DESTINATIONS = "/api/workspaces/ws-a/destinations"
CANARIES = ["Cn4ry-08", "Cn4ry-12-abc", "Cn4ry-24-abcdefghijklmnop", "Cn4ry-64-" + "x" * 55]
RETARGETED = "Re-enter the secrets when the target changes"


async def error_of(resp) -> dict:
    return (await resp.json())["error"]


@pytest.mark.parametrize(
    "patch",
    [
        {"baseUrl": "https://attacker.example/collect"},
        {"baseUrl": "http://api.example.com"},
        {"baseUrl": "https://api.example.com:8443"},
    ],
    ids=["other-host", "other-scheme", "other-port"],
)
async def test_a_masked_header_cannot_follow_the_source_to_another_origin(client, ws, db, secrets, patch):
    url = f"{SOURCES}/{ws.data_source_id}"
    resp = await client.patch(url, json=patch, headers=ws.headers)
    assert resp.status == 422
    assert (await error_of(resp))["message"] == RETARGETED
    assert {d["field"] for d in (await error_of(resp))["details"]} == {"headers.Authorization"}
    stored = await db.data_sources.find_one({"_id": ObjectId(ws.data_source_id)})
    assert stored["baseUrl"] == "https://api.example.com"
    fresh = {**patch, "headers": {"Authorization": "Bearer a-new-secret-for-them"}}
    assert (await client.patch(url, json=fresh, headers=ws.headers)).status == 200


async def test_a_new_path_on_the_same_origin_keeps_the_masked_secret(client, ws, db, secrets):
    url = f"{SOURCES}/{ws.data_source_id}"
    resp = await client.patch(url, json={"baseUrl": "https://api.example.com/v2"}, headers=ws.headers)
    assert resp.status == 200, await resp.text()
    stored = await db.data_sources.find_one({"_id": ObjectId(ws.data_source_id)})
    assert secrets.open(stored["headers"]["Authorization"]) == "Bearer sk_live_secret"


async def test_masked_params_and_query_secrets_cannot_follow_a_new_origin(client, ws):
    body = http_source_body(
        baseUrl="https://api.example.com/v1?api_key=query-secret-123",
        headers={},
        entities=[{"name": "c", "path": "/c", "params": {"token": "param-secret-123"}}],
    )
    created = await (await client.post(SOURCES, json=body, headers=ws.headers)).json()
    url = f"{SOURCES}/{created['id']}"
    moved = {**created, "baseUrl": "https://attacker.example/v1"}
    moved = {key: moved[key] for key in ("name", "type", "baseUrl", "headers", "entities")}
    resp = await client.put(url, json=moved, headers=ws.headers)
    assert resp.status == 422 and (await error_of(resp))["message"] == RETARGETED
    moved["baseUrl"] = "https://attacker.example/v1?api_key=***"
    resp = await client.put(url, json=moved, headers=ws.headers)
    assert resp.status == 422 and (await error_of(resp))["message"] == RETARGETED


async def test_a_command_source_keeps_its_secrets_only_with_its_connector(client, ws, token_for):
    admin = await token_for(admin=True)
    for name in ("erp", "crm"):
        connector = {"name": name, "executable": f"/opt/{name}"}
        assert (await client.post("/api/admin/connectors", json=connector, headers=admin)).status == 201
    body = {"name": "s", "type": "command", "connector": "erp", "secrets": {"PASSWORD": "erp-password-1"}}
    created = await (await client.post(SOURCES, json=body, headers=ws.headers)).json()
    url = f"{SOURCES}/{created['id']}"
    resp = await client.patch(url, json={"connector": "crm"}, headers=ws.headers)
    assert resp.status == 422 and (await error_of(resp))["message"] == RETARGETED
    assert (await client.patch(url, json={"name": "renamed"}, headers=ws.headers)).status == 200


async def test_a_masked_destination_password_cannot_follow_a_new_cluster(client, ws, db, secrets):
    body = destination_body(url="mongodb://app:db-password-1@db1.example.com:27017/?replicaSet=rs")
    created = await (await client.post(DESTINATIONS, json=body, headers=ws.headers)).json()
    assert created["url"] == "mongodb://app:***@db1.example.com:27017/?replicaSet=rs"
    url = f"{DESTINATIONS}/{created['id']}"
    moved = {"url": "mongodb://app:***@attacker.example:27017/?replicaSet=rs"}
    resp = await client.patch(url, json=moved, headers=ws.headers)
    assert resp.status == 422 and (await error_of(resp))["message"] == RETARGETED
    stored = await db.destinations.find_one({"_id": ObjectId(created["id"])})
    assert secrets.open(stored["url"]).startswith("mongodb://app:db-password-1@db1.example.com")


async def test_query_strings_params_and_url_options_are_sealed_and_masked(client, ws, db):
    body = http_source_body(
        baseUrl="https://api.example.com/v1?api_key=query-secret-123",
        entities=[{"name": "c", "path": "/c?status=active", "params": {"token": "param-secret-123"}}],
    )
    created = await (await client.post(SOURCES, json=body, headers=ws.headers)).json()
    assert created["baseUrl"] == "https://api.example.com/v1?api_key=***"
    assert created["entities"][0]["params"] == {"token": "***"}
    assert created["entities"][0]["path"] == "/c?status=active"
    stored = str(await db.data_sources.find_one({"_id": ObjectId(created["id"])}))
    assert "query-secret-123" not in stored and "param-secret-123" not in stored
    dest = destination_body(url="mongodb://db.example.com/?authSource=admin&password=option-secret-1")
    shown = await (await client.post(DESTINATIONS, json=dest, headers=ws.headers)).json()
    assert shown["url"] == "mongodb://db.example.com/?authSource=admin&password=***"


@pytest.mark.parametrize(
    "body",
    [
        http_source_body(headers={"X-Key": "short"}),
        http_source_body(baseUrl="https://u:pw@api.example.com"),
        http_source_body(baseUrl="https://api.example.com?key=abc"),
        http_source_body(entities=[{"name": "c", "path": "/c", "params": {"k": "abc"}}]),
        http_source_body(headers={"X-New": "***"}),
    ],
    ids=["header", "url-password", "query", "param", "mask-for-nothing"],
)
async def test_secrets_under_eight_characters_or_a_bare_mask_are_refused(client, ws, body):
    resp = await client.post(SOURCES, json=body, headers=ws.headers)
    assert resp.status == 422, await resp.text()


@pytest.mark.parametrize("canary", CANARIES)
async def test_no_form_of_a_secret_comes_back_from_the_api(client, ws, canary):
    body = http_source_body(
        baseUrl=f"https://user:{canary}@api.example.com/v1?api_key={canary}",
        headers={"Authorization": canary},
        entities=[{"name": "c", "path": "/c", "params": {"token": canary}}],
    )
    resp = await client.post(SOURCES, json=body, headers=ws.headers)
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    answers = [
        await resp.text(),
        await (await client.get(f"{SOURCES}/{created['id']}", headers=ws.headers)).text(),
        await (await client.get(SOURCES, headers=ws.headers)).text(),
        await (
            await client.patch(f"{SOURCES}/{created['id']}", json={"headers": {"X": "y"}}, headers=ws.headers)
        ).text(),
    ]
    forms = [
        canary,
        quote(canary, safe=""),
        base64.b64encode(canary.encode()).decode().rstrip("="),
        canary[:8],
    ]
    for answer in answers:
        for form in forms:
            assert form not in answer


@pytest.mark.parametrize(
    "path", ["http://169.254.169.254/latest/meta-data", "//127.0.0.1:8080/api", "https:/x", "/a\nb"]
)
async def test_an_entity_path_that_is_a_url_is_refused(client, ws, path):
    body = http_source_body(entities=[{"name": "c", "path": path}])
    resp = await client.post(SOURCES, json=body, headers=ws.headers)
    assert resp.status == 422, await resp.text()
    assert (await error_of(resp))["details"][0]["field"].endswith("path")


async def test_params_stored_in_clear_before_they_were_secret_are_sealed_when_kept(client, ws, db, secrets):
    await db.data_sources.update_one(
        {"_id": ObjectId(ws.data_source_id)},
        {"$set": {"entities": [{"name": "customers", "path": "/c", "params": {"key": "legacy-clear-1"}}]}},
    )
    resp = await client.patch(f"{SOURCES}/{ws.data_source_id}", json={"name": "renamed"}, headers=ws.headers)
    assert resp.status == 200, await resp.text()
    stored = await db.data_sources.find_one({"_id": ObjectId(ws.data_source_id)})
    assert "legacy-clear-1" not in str(stored)
    assert secrets.open(stored["entities"][0]["params"]["key"]) == "legacy-clear-1"
