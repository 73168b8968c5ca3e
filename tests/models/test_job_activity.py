"""The dashboard's change marker and recent runs, on the in-memory database."""

from datetime import UTC, datetime, timedelta

from bson import ObjectId

from models.job_activity import JobActivity

NOW = datetime(2030, 1, 7, 12, 0, tzinfo=UTC)


async def add_job(db, workspace_id: str) -> ObjectId:
    doc = {"workspaceId": workspace_id, "version": 1, "enabled": True, "lastRunStatus": None}
    return (await db.syncjobs.insert_one(doc)).inserted_id


async def add_run(db, job_id: ObjectId, workspace_id: str, status: str, minutes: int) -> ObjectId:
    doc = {
        "jobId": job_id,
        "workspaceId": workspace_id,
        "status": status,
        "queuedAt": NOW + timedelta(minutes=minutes),
        "scheduledFor": NOW + timedelta(minutes=minutes),
    }
    return (await db.job_executions.insert_one(doc)).inserted_id


async def test_the_marker_moves_when_a_run_is_queued_starts_and_ends_and_only_then(db):
    activity = JobActivity(db)
    job_id = await add_job(db, "ws-a")
    quiet = await activity.marker("ws-a", jobs_shown=200)
    assert await activity.marker("ws-a", jobs_shown=200) == quiet
    run_id = await add_run(db, job_id, "ws-a", "queued", 0)
    queued = await activity.marker("ws-a", jobs_shown=200)
    await db.job_executions.update_one({"_id": run_id}, {"$set": {"status": "running"}})
    running = await activity.marker("ws-a", jobs_shown=200)
    await db.job_executions.update_one({"_id": run_id}, {"$set": {"status": "succeeded"}})
    await db.syncjobs.update_one({"_id": job_id}, {"$set": {"lastRunStatus": "succeeded"}})
    finished = await activity.marker("ws-a", jobs_shown=200)
    assert len({quiet, queued, running, finished}) == 4


async def test_another_workspace_never_moves_the_marker(db):
    activity = JobActivity(db)
    await add_job(db, "ws-a")
    before = await activity.marker("ws-a", jobs_shown=200)
    other = await add_job(db, "ws-b")
    await add_run(db, other, "ws-b", "running", 0)
    assert await activity.marker("ws-a", jobs_shown=200) == before


async def test_recent_runs_are_each_jobs_newest_within_the_workspace(db):
    job_a, job_b = await add_job(db, "ws-a"), await add_job(db, "ws-a")
    for minute in range(5):
        await add_run(db, job_a, "ws-a", "succeeded", minute)
    await add_run(db, job_b, "ws-a", "failed", 0)
    await add_run(db, job_b, "ws-b", "failed", 9)  # a forged run naming ws-a's job from elsewhere
    runs = await JobActivity(db).recent_runs("ws-a", [job_a, job_b], 3)
    assert [run["queuedAt"] for run in runs[job_a]] == [NOW + timedelta(minutes=m) for m in (4, 3, 2)]
    assert [run["status"] for run in runs[job_b]] == ["failed"] and len(runs[job_b]) == 1
