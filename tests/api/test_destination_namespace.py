"""Attacks on where a destination writes, refused at input (C1 and H1 of issue 9)."""

import pytest

from models.namespaces import MAX_WORKSPACE_DATABASE, workspace_database
from tests.factories import destination_body, http_source_body

DESTINATIONS = "/api/workspaces/ws-a/destinations"
SOURCES = "/api/workspaces/ws-a/data-sources"


async def test_the_api_shows_the_workspace_database_a_destination_writes_to(client, ws):
    resp = await client.post(DESTINATIONS, json=destination_body(database="syncjobs"), headers=ws.headers)
    assert resp.status == 201, await resp.text()
    shown = await resp.json()
    assert shown["effectiveDatabase"] == workspace_database("ws-a", "syncjobs")
    assert shown["effectiveDatabase"].startswith("sj_ws-a_") and shown["effectiveDatabase"].endswith(
        "_syncjobs"
    )
    listed = await (await client.get(DESTINATIONS, headers=ws.headers)).json()
    assert all(item["effectiveDatabase"].startswith("sj_ws-a_") for item in listed["items"])


def test_workspace_databases_differ_even_when_their_slugs_agree():
    assert workspace_database("Team A", "w") != workspace_database("team-a", "w")
    assert workspace_database("a" * 40, "w") != workspace_database("a" * 41, "w")


@pytest.mark.parametrize(
    "body",
    [
        {"database": "admin", "url": "mongodb://db.example.com"},
        {"database": "config", "url": "mongodb://db.example.com"},
        {"database": "local", "url": "mongodb://db.example.com"},
        {"database": "ADMIN", "url": "mongodb://db.example.com"},
        {"database": "a$b"},
        {"database": "a\x00b"},
        {"database": "a.b"},
        {"database": "x" * (MAX_WORKSPACE_DATABASE + 1)},
        {"collectionPrefix": "system."},
        {"collectionPrefix": "$x"},
    ],
    ids=[
        "admin",
        "config",
        "local",
        "ADMIN",
        "dollar",
        "nul",
        "dot",
        "too-long",
        "system-prefix",
        "dollar-prefix",
    ],
)
async def test_a_destination_naming_a_forbidden_namespace_is_refused(client, ws, body):
    resp = await client.post(DESTINATIONS, json=destination_body(**body), headers=ws.headers)
    assert resp.status == 422, await resp.text()
    assert (await resp.json())["error"]["details"]


@pytest.mark.parametrize("entity", ["system.users", "$cmd", "a\x00b", ".hidden"])
async def test_an_entity_that_would_be_a_forbidden_collection_is_refused(client, ws, entity):
    body = http_source_body(entities=[{"name": entity, "path": "/x"}])
    resp = await client.post(SOURCES, json=body, headers=ws.headers)
    assert resp.status == 422, await resp.text()
