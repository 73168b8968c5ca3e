from bson import ObjectId

from tests.api.helpers import create_job
from tests.factories import destination_body, http_source_body

SOURCES = "/api/workspaces/ws-a/data-sources"
DESTINATIONS = "/api/workspaces/ws-a/destinations"


async def test_secret_headers_are_masked_in_responses_and_sealed_at_rest(client, ws, db, secrets):
    source = await (await client.get(f"{SOURCES}/{ws.data_source_id}", headers=ws.headers)).json()
    assert source["headers"] == {"Authorization": "***"}
    stored = await db.data_sources.find_one({"_id": ObjectId(ws.data_source_id)})
    assert "sk_live_secret" not in str(stored)
    assert secrets.open(stored["headers"]["Authorization"]) == "Bearer sk_live_secret"


async def test_sending_the_mask_back_keeps_the_stored_secret(client, ws, db, secrets):
    url = f"{SOURCES}/{ws.data_source_id}"
    source = await (await client.get(url, headers=ws.headers)).json()
    body = {key: source[key] for key in ("name", "type", "baseUrl", "headers", "entities")}
    body["headers"]["X-Extra"] = "plain-value"
    resp = await client.put(url, json=body, headers=ws.headers)
    assert resp.status == 200, await resp.text()
    stored = await db.data_sources.find_one({"_id": ObjectId(ws.data_source_id)})
    assert secrets.open(stored["headers"]["Authorization"]) == "Bearer sk_live_secret"
    assert secrets.open(stored["headers"]["X-Extra"]) == "plain-value"


async def test_credentials_in_urls_are_masked_and_kept(client, ws, db, secrets):
    resp = await client.post(
        DESTINATIONS,
        json=destination_body(url="mongodb://app:s3cret-password@db1:27017,db2:27017/?replicaSet=rs"),
        headers=ws.headers,
    )
    created = await resp.json()
    assert created["url"] == "mongodb://app:***@db1:27017,db2:27017/?replicaSet=rs"
    resp = await client.patch(f"{DESTINATIONS}/{created['id']}", json={"name": "Renamed"}, headers=ws.headers)
    assert resp.status == 200
    stored = await db.destinations.find_one({"_id": ObjectId(created["id"])})
    assert "s3cret-password" not in str(stored)
    assert secrets.open(stored["url"]) == "mongodb://app:s3cret-password@db1:27017,db2:27017/?replicaSet=rs"


async def test_command_sources_validate_and_switching_type_drops_old_fields(client, ws, db, token_for):
    resp = await client.post(
        SOURCES, json={"name": "script", "type": "command", "argv": ["/bin/sh"]}, headers=ws.headers
    )
    assert resp.status == 422
    resp = await client.post(SOURCES, json={"name": "s", "type": "ftp"}, headers=ws.headers)
    assert resp.status == 422
    connector = {"name": "echo", "executable": "/bin/echo", "args": ["hi"]}
    admin = await token_for(admin=True)
    assert (await client.post("/api/admin/connectors", json=connector, headers=admin)).status == 201
    url = f"{SOURCES}/{ws.data_source_id}"
    resp = await client.put(
        url, json={"name": "script", "type": "command", "connector": "echo"}, headers=ws.headers
    )
    assert resp.status == 200, await resp.text()
    stored = await db.data_sources.find_one({"_id": ObjectId(ws.data_source_id)})
    assert stored["connector"] == "echo"
    assert stored.get("baseUrl") is None and stored.get("headers") is None


async def test_http_source_validation_names_fields(client, ws):
    body = http_source_body(
        baseUrl="ftp://x", entities=[{"name": "a", "path": "/a"}, {"name": "a", "path": "/b"}]
    )
    resp = await client.post(SOURCES, json=body, headers=ws.headers)
    assert resp.status == 422
    fields = {item["field"] for item in (await resp.json())["error"]["details"]}
    assert any("baseUrl" in field for field in fields) and any("entities" in field for field in fields)


async def test_resource_in_use_cannot_be_deleted(client, ws):
    job = await create_job(client, ws)
    resp = await client.delete(f"{SOURCES}/{ws.data_source_id}", headers=ws.headers)
    assert resp.status == 409
    assert (await resp.json())["error"]["details"]["syncJobIds"] == [job["id"]]
    assert (await client.delete(f"{ws.jobs}/{job['id']}", headers=ws.headers)).status == 204
    assert (await client.delete(f"{SOURCES}/{ws.data_source_id}", headers=ws.headers)).status == 204
    assert (await client.get(f"{SOURCES}/{ws.data_source_id}", headers=ws.headers)).status == 404


async def test_resources_are_workspace_scoped_and_paginated(client, ws, token_for):
    other = await token_for("ws-b")
    assert (
        await client.get(f"/api/workspaces/ws-b/data-sources/{ws.data_source_id}", headers=other)
    ).status == 404
    for i in range(3):
        await client.post(DESTINATIONS, json=destination_body(name=f"d{i}"), headers=ws.headers)
    page = await (await client.get(DESTINATIONS, params={"limit": "2"}, headers=ws.headers)).json()
    assert len(page["items"]) == 2 and page["nextCursor"]
    rest = await (
        await client.get(DESTINATIONS, params={"cursor": page["nextCursor"]}, headers=ws.headers)
    ).json()
    assert len(rest["items"]) == 2 and rest["nextCursor"] is None
