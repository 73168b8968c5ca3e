from datetime import timedelta

from bson import ObjectId

from tests.api.helpers import create_job
from tests.factories import sync_job_body


async def test_create_returns_the_job_with_location_and_etag(client, ws):
    body = sync_job_body(dataSourceId=ws.data_source_id, destinationDatabaseId=ws.destination_id)
    resp = await client.post(ws.jobs, json=body, headers=ws.headers)
    assert resp.status == 201
    job = await resp.json()
    assert resp.headers["Location"] == f"{ws.jobs}/{job['id']}"
    assert resp.headers["ETag"] == '"1"'
    assert job["name"] == "Hourly Stripe Sync"
    assert job["schedule"] == {"cron": "0 * * * *", "timezone": "America/New_York"}
    assert job["workspaceId"] == "ws-a"
    assert job["version"] == 1
    assert job["overlapPolicy"] == "skip"
    assert job["retry"]["maxAttempts"] == 3
    assert job["lastRunAt"] is None and job["runCount"] == 0


async def test_created_job_is_stored_with_camel_case_fields_and_real_dates(client, ws, db, clock):
    job = await create_job(client, ws)
    doc = await db.syncjobs.find_one({"_id": ObjectId(job["id"])})
    assert doc["workspaceId"] == "ws-a"
    assert doc["dataSourceId"] == ws.data_source_id
    assert doc["createdAt"] == clock.now()


async def test_get_and_list_return_the_job(client, ws):
    job = await create_job(client, ws)
    resp = await client.get(f"{ws.jobs}/{job['id']}", headers=ws.headers)
    assert resp.status == 200 and (await resp.json())["id"] == job["id"]
    resp = await client.get(ws.jobs, headers=ws.headers)
    listing = await resp.json()
    assert [item["id"] for item in listing["items"]] == [job["id"]]
    assert listing["nextCursor"] is None


async def test_list_pages_with_a_stable_cursor(client, ws):
    ids = [(await create_job(client, ws, name=f"job {i}"))["id"] for i in range(5)]
    seen, cursor = [], None
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        listing = await (await client.get(ws.jobs, params=query, headers=ws.headers)).json()
        assert len(listing["items"]) <= 2
        seen += [item["id"] for item in listing["items"]]
        cursor = listing["nextCursor"]
        if cursor is None:
            break
    assert seen == ids


async def test_bad_limit_and_cursor_are_422(client, ws):
    for params in ({"limit": "0"}, {"limit": "201"}, {"limit": "x"}, {"cursor": "not-a-cursor"}):
        resp = await client.get(ws.jobs, params=params, headers=ws.headers)
        assert resp.status == 422, params
        assert (await resp.json())["error"]["code"] == "validation_failed"


async def test_job_in_another_workspace_is_not_found(client, ws, token_for):
    job = await create_job(client, ws)
    other = await token_for("ws-b")
    for method, suffix in (
        ("GET", ""),
        ("DELETE", ""),
        ("POST", "/toggle"),
        ("POST", "/run"),
        ("GET", "/status"),
    ):
        resp = await client.request(
            method, f"/api/workspaces/ws-b/sync-jobs/{job['id']}{suffix}", headers=other
        )
        assert resp.status == 404, (method, suffix)
    listing = await (await client.get("/api/workspaces/ws-b/sync-jobs", headers=other)).json()
    assert listing["items"] == []


async def test_malformed_job_id_is_404_not_500(client, ws):
    resp = await client.get(f"{ws.jobs}/not-an-id", headers=ws.headers)
    assert resp.status == 404
    body = await resp.json()
    assert body["error"]["code"] == "not_found"
    assert body["error"]["details"]["id"] == "not-an-id"


async def test_validation_lists_every_bad_field(client, ws):
    body = sync_job_body(
        dataSourceId="xyz",
        destinationDatabaseId=ws.destination_id,
        schedule={"cron": "61 * * * *", "timezone": "Mars/Olympus"},
        syncMode="sometimes",
        name="",
        colour="blue",
    )
    resp = await client.post(ws.jobs, json=body, headers=ws.headers)
    assert resp.status == 422
    error = (await resp.json())["error"]
    fields = {item["field"]: item["message"] for item in error["details"]}
    assert "minute" in fields["schedule.cron"]
    assert "Mars/Olympus" in fields["schedule.timezone"]
    assert set(fields) >= {"dataSourceId", "syncMode", "name", "colour"}
    assert fields["colour"] == "unknown field"


async def test_cron_macros_are_accepted_and_bad_fields_are_named(client, ws):
    for cron in ("@hourly", "@daily", "@weekly", "*/15 9-17 * * mon-fri"):
        await create_job(client, ws, schedule={"cron": cron, "timezone": "UTC"})
    for cron, named in (
        ("* 25 * * *", "hour"),
        ("* * 0 * *", "day of month"),
        ("* * * 13 *", "month"),
        ("* * * * 9", "day of week"),
        ("* * *", "5 fields"),
        ("@often", "macro"),
    ):
        body = sync_job_body(
            dataSourceId=ws.data_source_id, destinationDatabaseId=ws.destination_id, schedule={"cron": cron}
        )
        resp = await client.post(ws.jobs, json=body, headers=ws.headers)
        assert resp.status == 422, cron
        assert named in (await resp.json())["error"]["details"][0]["message"], cron


async def test_ranges_are_enforced(client, ws):
    for overrides in (
        {"timeoutSeconds": 0},
        {"retry": {"maxAttempts": 0}},
        {"misfireGraceSeconds": -1},
        {"name": "x" * 201},
        {"entities": ["a", "a"]},
        {"overlapPolicy": "sometimes"},
    ):
        body = sync_job_body(
            dataSourceId=ws.data_source_id, destinationDatabaseId=ws.destination_id, **overrides
        )
        resp = await client.post(ws.jobs, json=body, headers=ws.headers)
        assert resp.status == 422, overrides


async def test_references_must_be_resources_of_the_same_workspace(client, ws, token_for):
    other = await token_for("ws-b")
    resp = await client.post(
        "/api/workspaces/ws-b/sync-jobs",
        json=sync_job_body(dataSourceId=ws.data_source_id, destinationDatabaseId=ws.destination_id),
        headers=other,
    )
    assert resp.status == 422
    fields = [item["field"] for item in (await resp.json())["error"]["details"]]
    assert fields == ["dataSourceId", "destinationDatabaseId"]


async def test_put_replaces_and_bumps_version(client, ws):
    job = await create_job(client, ws)
    body = sync_job_body(
        dataSourceId=ws.data_source_id,
        destinationDatabaseId=ws.destination_id,
        name="Renamed",
        syncMode="full",
    )
    resp = await client.put(f"{ws.jobs}/{job['id']}", json=body, headers=ws.headers)
    assert resp.status == 200
    updated = await resp.json()
    assert updated["name"] == "Renamed" and updated["syncMode"] == "full"
    assert updated["version"] == 2 and resp.headers["ETag"] == '"2"'


async def test_patch_merges_nested_objects_and_null_restores_the_default(client, ws, clock):
    job = await create_job(client, ws, retry={"maxAttempts": 5, "backoffSeconds": 10})
    clock.set(clock.now() + timedelta(seconds=5))
    resp = await client.patch(
        f"{ws.jobs}/{job['id']}",
        json={"schedule": {"cron": "*/5 * * * *"}, "retry": {"maxAttempts": None}},
        headers=ws.headers,
    )
    assert resp.status == 200, await resp.text()
    updated = await resp.json()
    assert updated["schedule"] == {"cron": "*/5 * * * *", "timezone": "America/New_York"}
    assert updated["retry"]["maxAttempts"] == 3 and updated["retry"]["backoffSeconds"] == 10
    assert updated["version"] == 2
    assert updated["updatedAt"] > job["updatedAt"]


async def test_patch_refuses_status_fields_and_invalid_merges(client, ws):
    job = await create_job(client, ws)
    resp = await client.patch(
        f"{ws.jobs}/{job['id']}", json={"lastRunAt": "2020-01-01T00:00:00Z"}, headers=ws.headers
    )
    assert resp.status == 422
    resp = await client.patch(
        f"{ws.jobs}/{job['id']}", json={"schedule": {"cron": "bad"}}, headers=ws.headers
    )
    assert resp.status == 422
    resp = await client.patch(f"{ws.jobs}/{job['id']}", json=[1, 2], headers=ws.headers)
    assert resp.status == 422
    current = await (await client.get(f"{ws.jobs}/{job['id']}", headers=ws.headers)).json()
    assert current["version"] == 1


async def test_if_match_mismatch_is_412_and_changes_nothing(client, ws):
    job = await create_job(client, ws)
    url = f"{ws.jobs}/{job['id']}"
    stale = {**ws.headers, "If-Match": '"7"'}
    body = sync_job_body(dataSourceId=ws.data_source_id, destinationDatabaseId=ws.destination_id, name="X")
    assert (await client.put(url, json=body, headers=stale)).status == 412
    resp = await client.patch(url, json={"name": "Y"}, headers=stale)
    assert resp.status == 412
    assert (await resp.json())["error"]["details"] == {"expectedVersion": 7, "version": 1}
    assert (await client.delete(url, headers=stale)).status == 412
    assert (await client.post(f"{url}/toggle", headers=stale)).status == 412
    assert (await client.put(url, json=body, headers={**ws.headers, "If-Match": "garbage"})).status == 412
    current = await (await client.get(url, headers=ws.headers)).json()
    assert current["name"] == "Hourly Stripe Sync" and current["version"] == 1 and current["enabled"] is True


async def test_if_match_with_the_current_etag_succeeds(client, ws):
    job = await create_job(client, ws)
    url = f"{ws.jobs}/{job['id']}"
    resp = await client.patch(url, json={"name": "Y"}, headers={**ws.headers, "If-Match": '"1"'})
    assert resp.status == 200
    resp = await client.patch(
        url, json={"name": "Z"}, headers={**ws.headers, "If-Match": resp.headers["ETag"]}
    )
    assert resp.status == 200 and (await resp.json())["version"] == 3


async def test_toggle_flips_enabled_and_bumps_version(client, ws):
    job = await create_job(client, ws)
    resp = await client.post(f"{ws.jobs}/{job['id']}/toggle", headers=ws.headers)
    assert resp.status == 200
    assert (await resp.json())["enabled"] is False
    resp = await client.post(f"{ws.jobs}/{job['id']}/toggle", headers=ws.headers)
    toggled = await resp.json()
    assert toggled["enabled"] is True and toggled["version"] == 3


async def test_delete_removes_the_job(client, ws, db):
    job = await create_job(client, ws)
    resp = await client.delete(f"{ws.jobs}/{job['id']}", headers=ws.headers)
    assert resp.status == 204
    assert (await client.get(f"{ws.jobs}/{job['id']}", headers=ws.headers)).status == 404
    assert await db.syncjobs.count_documents({}) == 0
    assert (await client.delete(f"{ws.jobs}/{job['id']}", headers=ws.headers)).status == 404


async def test_delete_records_a_cancel_for_the_running_execution(client, ws, db, clock):
    job = await create_job(client, ws)
    run = await (await client.post(f"{ws.jobs}/{job['id']}/run", headers=ws.headers)).json()
    await db.job_executions.update_one({"_id": ObjectId(run["executionId"])}, {"$set": {"status": "running"}})
    assert (await client.delete(f"{ws.jobs}/{job['id']}", headers=ws.headers)).status == 204
    execution = await db.job_executions.find_one({"_id": ObjectId(run["executionId"])})
    assert execution["status"] == "running"
    assert execution["cancelRequestedAt"] == clock.now()


async def test_delete_cancels_a_queued_execution_outright(client, ws, db):
    job = await create_job(client, ws)
    run = await (await client.post(f"{ws.jobs}/{job['id']}/run", headers=ws.headers)).json()
    assert (await client.delete(f"{ws.jobs}/{job['id']}", headers=ws.headers)).status == 204
    execution = await db.job_executions.find_one({"_id": ObjectId(run["executionId"])})
    assert execution["status"] == "canceled" and execution["finishedAt"] is not None
