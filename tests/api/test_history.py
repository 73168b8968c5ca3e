"""Run history outlives its job until retention; runs across jobs; a job's incremental position."""

from datetime import timedelta

from bson import ObjectId

from tests.api.helpers import create_job


async def finish(db, execution_id: str, status: str = "succeeded") -> None:
    await db.job_executions.update_one({"_id": ObjectId(execution_id)}, {"$set": {"status": status}})


async def run(client, ws, job_id: str, **params) -> str:
    resp = await client.post(f"{ws.jobs}/{job_id}/run", params=params, headers=ws.headers)
    assert resp.status == 202, await resp.text()
    return (await resp.json())["executionId"]


async def test_history_of_a_deleted_job_stays_readable_with_the_jobs_last_state(client, ws, db):
    job = await create_job(client, ws, name="Nightly")
    execution_id = await run(client, ws, job["id"])
    await finish(db, execution_id)
    assert (await client.delete(f"{ws.jobs}/{job['id']}", headers=ws.headers)).status == 204

    listing = await client.get(f"{ws.jobs}/{job['id']}/executions", headers=ws.headers)
    assert listing.status == 200
    items = (await listing.json())["items"]
    assert [item["id"] for item in items] == [execution_id]
    assert items[0]["job"]["name"] == "Nightly" and items[0]["job"]["schedule"]["cron"] == "0 * * * *"
    one = await client.get(f"{ws.jobs}/{job['id']}/executions/{execution_id}", headers=ws.headers)
    assert one.status == 200 and (await one.json())["job"]["deletedAt"]


async def test_a_job_that_never_existed_has_no_history(client, ws):
    resp = await client.get(f"{ws.jobs}/{ObjectId()}/executions", headers=ws.headers)
    assert resp.status == 404


async def test_workspace_runs_are_filtered_newest_first_and_paged(client, ws, db, clock, token_for):
    first, second = await create_job(client, ws, name="a"), await create_job(client, ws, name="b")
    ids = []
    for job in (first, second, first, second):
        ids.append(await run(client, ws, job["id"]))
        await finish(db, ids[-1], "failed" if len(ids) % 2 else "succeeded")
        clock.set(clock.now() + timedelta(minutes=1))
    url = f"/api/workspaces/{ws.id}/executions"
    everything = await (await client.get(url, headers=ws.headers)).json()
    assert [item["id"] for item in everything["items"]] == ids[::-1]

    seen, cursor = [], None
    while True:
        page = await (
            await client.get(
                url, params={"limit": "3", **({"cursor": cursor} if cursor else {})}, headers=ws.headers
            )
        ).json()
        seen += [item["id"] for item in page["items"]]
        if not (cursor := page["nextCursor"]):
            break
    assert seen == ids[::-1]

    async def ids_for(**params) -> list[str]:
        resp = await client.get(url, params=params, headers=ws.headers)
        assert resp.status == 200, await resp.text()
        return [item["id"] for item in (await resp.json())["items"]]

    assert await ids_for(jobId=first["id"]) == [ids[2], ids[0]]
    assert await ids_for(status="failed") == [ids[2], ids[0]]
    assert await ids_for(trigger="schedule") == []
    start = everything["items"][-2]["queuedAt"]
    end = everything["items"][0]["queuedAt"]
    assert await ids_for(**{"from": start, "to": end}) == [ids[2], ids[1]]
    for bad in (
        {"status": "x"},
        {"trigger": "x"},
        {"jobId": "x"},
        {"from": "yesterday"},
        {"to": "2030-01-01"},
    ):
        assert (await client.get(url, params=bad, headers=ws.headers)).status == 422, bad
    other = await token_for("ws-b")
    assert (await (await client.get("/api/workspaces/ws-b/executions", headers=other)).json())["items"] == []


async def test_cursors_are_shown_and_reset_per_entity_or_whole(client, ws, db):
    job = await create_job(client, ws)
    url = f"{ws.jobs}/{job['id']}/cursors"
    await db.syncjobs.update_one(
        {"_id": ObjectId(job["id"])}, {"$set": {"cursors": {"customers": "2030-01-02", "orders": 41}}}
    )
    assert (await (await client.get(url, headers=ws.headers)).json()) == {
        "cursors": {"customers": "2030-01-02", "orders": 41}
    }
    shown = await client.get(url, params={"entity": "orders"}, headers=ws.headers)
    assert await shown.json() == {"cursors": {"orders": 41}}
    reset = await client.delete(url, params={"entity": "orders"}, headers=ws.headers)
    assert reset.status == 200 and await reset.json() == {"cursors": {"customers": "2030-01-02"}}
    assert (await (await client.delete(url, headers=ws.headers)).json()) == {"cursors": {}}
    stored = await db.syncjobs.find_one({"_id": ObjectId(job["id"])})
    assert stored["cursors"] == {} and stored["version"] == 1
    assert (await client.delete(url, params={"entity": "a.b"}, headers=ws.headers)).status == 422


async def test_cursors_are_not_reset_under_a_running_sync(client, ws, db):
    job = await create_job(client, ws)
    await finish(db, await run(client, ws, job["id"]), "running")
    resp = await client.delete(f"{ws.jobs}/{job['id']}/cursors", headers=ws.headers)
    assert resp.status == 409


async def test_another_workspace_cannot_reach_a_jobs_history_runs_or_cursors(client, ws, db, token_for):
    job = await create_job(client, ws)
    execution_id = await run(client, ws, job["id"])
    await finish(db, execution_id)
    assert (await client.delete(f"{ws.jobs}/{job['id']}", headers=ws.headers)).status == 204
    intruder = await token_for("ws-b")
    theirs = f"/api/workspaces/ws-b/sync-jobs/{job['id']}"
    assert (await client.get(f"{theirs}/executions", headers=intruder)).status == 404
    assert (await client.get(f"{theirs}/executions/{execution_id}", headers=intruder)).status == 404
    listing = await client.get(
        "/api/workspaces/ws-b/executions", params={"jobId": job["id"]}, headers=intruder
    )
    assert (await listing.json())["items"] == []
    assert (await client.get("/api/workspaces/ws-a/executions", headers=intruder)).status == 403
    live = await create_job(client, ws)
    await db.syncjobs.update_one({"_id": ObjectId(live["id"])}, {"$set": {"cursors": {"customers": "x"}}})
    mine = f"/api/workspaces/ws-b/sync-jobs/{live['id']}/cursors"
    assert (await client.get(mine, headers=intruder)).status == 404
    assert (await client.delete(mine, headers=intruder)).status == 404
    assert (await db.syncjobs.find_one({"_id": ObjectId(live["id"])}))["cursors"] == {"customers": "x"}


async def test_a_refused_delete_leaves_the_history_of_a_live_job_unmarked(client, ws, db):
    job = await create_job(client, ws)
    execution_id = await run(client, ws, job["id"])
    stale = {**ws.headers, "If-Match": '"9"'}
    assert (await client.delete(f"{ws.jobs}/{job['id']}", headers=stale)).status == 412
    one = await client.get(f"{ws.jobs}/{job['id']}/executions/{execution_id}", headers=ws.headers)
    assert (await one.json())["job"] is None
