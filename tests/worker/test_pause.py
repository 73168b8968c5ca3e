"""Pause and resume through the API, as the worker sees them: paused slots are recorded `skipped` with reason
`paused`; resuming replays nothing."""

from datetime import UTC, datetime

from tests.worker.conftest import executions_of, wait_for_status

ADMIN = "/api/admin/scheduler"


async def test_slots_while_paused_are_skipped_and_resume_replays_nothing(
    client, workers, db, clock, add_job, token_for
):
    clock.set(datetime(2030, 1, 7, 12, 0, 30, tzinfo=UTC))
    job = await add_job()  # every minute
    await workers.start()
    admin = await token_for(admin=True)
    assert (await (await client.post(f"{ADMIN}/pause", headers=admin)).json())["paused"] is True
    await clock.advance(90)  # the 12:01 and 12:02 slots come due
    runs = await executions_of(db, job["_id"])
    assert [run["scheduledFor"].minute for run in runs] == [1, 2]
    for run in runs:
        done = await wait_for_status(db, run["_id"], "skipped")
        assert done["reason"] == "paused" and done["pausedBy"] == "scheduler" and done["startedAt"] is None
    assert workers.runner.requests == []
    await client.post(f"{ADMIN}/resume", headers=admin)
    await clock.advance(60)  # 12:03
    runs = await executions_of(db, job["_id"])
    assert [run["scheduledFor"].minute for run in runs] == [1, 2, 3]
    await wait_for_status(db, runs[-1]["_id"], "succeeded")
    assert [run["status"] for run in await executions_of(db, job["_id"])] == [
        "skipped",
        "skipped",
        "succeeded",
    ]
    assert len(workers.runner.requests) == 1


async def test_a_paused_workspace_skips_only_its_own_jobs(client, workers, db, clock, add_job, ws):
    clock.set(datetime(2030, 1, 7, 12, 0, 30, tzinfo=UTC))
    mine = await add_job(workspaceId="ws-a")
    theirs = await add_job(workspaceId="ws-b")
    await workers.start()
    assert (await client.post("/api/workspaces/ws-a/pause", headers=ws.headers)).status == 200
    await clock.advance(31)
    [skipped] = await executions_of(db, mine["_id"])
    [ran] = await executions_of(db, theirs["_id"])
    assert (await wait_for_status(db, skipped["_id"], "skipped"))["pausedBy"] == "workspace"
    await wait_for_status(db, ran["_id"], "succeeded")


async def test_a_run_queued_before_the_pause_is_skipped_by_the_pause_itself(
    client, workers, db, clock, add_job, token_for
):
    from tests.worker.test_executions import start_run

    job = await add_job(schedule={"cron": "0 0 1 1 *", "timezone": "UTC"})
    await workers.start()
    queued = await start_run(db, clock, job)  # queued before the pause, not picked up yet
    await client.post(f"{ADMIN}/pause", headers=await token_for(admin=True))
    done = await db.job_executions.find_one({"_id": queued["_id"]})  # no poll went by: the pause did it
    assert (done["status"], done["reason"], done["pausedBy"]) == ("skipped", "paused", "scheduler")
    await clock.advance(3)
    assert workers.runner.requests == []
