"""Edits reach the schedule without a restart, through the polling fallback of the change feed."""

from datetime import UTC, datetime

from models.execution_store import ExecutionStore
from models.sync_job import SyncJobSpec
from models.sync_job_store import SyncJobStore
from tests.worker.conftest import FakeRunner, Workers, executions_of
from tests.worker.test_commands import Counted, commands_of


def spec(**overrides) -> SyncJobSpec:
    fields = {
        "name": "job",
        "dataSourceId": "a" * 24,
        "destinationDatabaseId": "b" * 24,
        "schedule": {"cron": "0 * * * *", "timezone": "UTC"},
    }
    fields.update(overrides)
    return SyncJobSpec.model_validate(fields)


async def test_a_job_created_after_start_is_scheduled_and_confirmed(workers, db, clock):
    leader = await workers.start()
    job = await SyncJobStore(db).create("ws-a", spec(), clock.now())
    await clock.advance(3)
    assert job["_id"] in leader.timetable
    stored = await db.syncjobs.find_one({"_id": job["_id"]})
    assert stored["scheduleAppliedVersion"] == 1 and stored["scheduleAppliedAt"] is not None
    assert stored["nextRunAt"] == datetime(2030, 1, 7, 13, 0, tzinfo=UTC)


async def test_cron_change_reschedules_without_restart(workers, db, clock):
    store = SyncJobStore(db)
    job = await store.create("ws-a", spec(), clock.now())
    leader = await workers.start()
    await store.update(
        "ws-a",
        job["_id"],
        {"schedule": {"cron": "*/5 * * * *", "timezone": "UTC"}},
        clock.now(),
        expected_version=1,
    )
    await clock.advance(3)
    assert leader.timetable.next_fire_of(job["_id"]) == datetime(2030, 1, 7, 12, 5, tzinfo=UTC)
    stored = await db.syncjobs.find_one({"_id": job["_id"]})
    assert stored["version"] == 2 and stored["scheduleAppliedVersion"] == 2
    await clock.advance(300)
    runs = await executions_of(db, job["_id"])
    assert [run["scheduledFor"].minute for run in runs] == [5]


async def test_toggle_off_stops_firing_and_toggle_on_resumes(workers, db, clock):
    store = SyncJobStore(db)
    job = await store.create("ws-a", spec(schedule={"cron": "* * * * *", "timezone": "UTC"}), clock.now())
    leader = await workers.start()
    await store.update("ws-a", job["_id"], {"enabled": False}, clock.now(), expected_version=None)
    await clock.advance(3)
    assert job["_id"] not in leader.timetable
    await clock.advance(120)
    assert await executions_of(db, job["_id"]) == []
    await store.update("ws-a", job["_id"], {"enabled": True}, clock.now(), expected_version=None)
    await clock.advance(65)
    assert len(await executions_of(db, job["_id"])) == 1


async def test_a_job_deleted_just_before_its_slot_never_runs(workers, db, clock, runner):
    clock.set(datetime(2030, 1, 7, 12, 0, 30, tzinfo=UTC))  # the slot comes 30 s in, well before the resync
    store = SyncJobStore(db)
    job = await store.create("ws-a", spec(schedule={"cron": "* * * * *", "timezone": "UTC"}), clock.now())
    await workers.start()
    await clock.advance(28)
    await store.delete(
        "ws-a", job["_id"], expected_version=None
    )  # polling cannot see a delete before the resync
    await clock.advance(3)
    runs = await executions_of(db, job["_id"])
    assert [(run["status"], run["reason"]) for run in runs] == [("canceled", "the job was deleted")]
    assert runner.requests == []


async def test_an_edit_the_feed_has_not_seen_yet_has_the_last_word_on_the_slot(workers, db, clock, runner):
    clock.set(datetime(2030, 1, 7, 12, 0, 30, tzinfo=UTC))
    workers.settings = workers.settings.model_copy(update={"poll_interval_seconds": 600})  # the feed lags
    store = SyncJobStore(db)
    disabled = await store.create(
        "ws-a", spec(schedule={"cron": "* * * * *", "timezone": "UTC"}), clock.now()
    )
    moved = await store.create("ws-a", spec(schedule={"cron": "* * * * *", "timezone": "UTC"}), clock.now())
    await workers.start()
    await clock.advance(29)
    await store.update("ws-a", disabled["_id"], {"enabled": False}, clock.now(), expected_version=None)
    await store.update(
        "ws-a",
        moved["_id"],
        {"schedule": {"cron": "30 * * * *", "timezone": "UTC"}},
        clock.now(),
        expected_version=None,
    )
    await clock.advance(2)
    reasons = {
        run["jobId"]: (run["status"], run["reason"]) for run in await db.job_executions.find().to_list(None)
    }
    assert reasons == {
        disabled["_id"]: ("skipped", "the job was disabled"),
        moved["_id"]: ("skipped", "the job's schedule changed"),
    }
    assert runner.requests == []


async def test_resync_drops_deleted_jobs(workers, db, clock):
    store = SyncJobStore(db)
    job = await store.create("ws-a", spec(), clock.now())
    leader = await workers.start()
    await db.syncjobs.delete_one({"_id": job["_id"]})
    await clock.advance(61)
    assert job["_id"] not in leader.timetable


async def test_the_workers_own_writes_do_not_reschedule(workers, db, clock):
    store = SyncJobStore(db)
    job = await store.create("ws-a", spec(schedule={"cron": "* * * * *", "timezone": "UTC"}), clock.now())
    await workers.start()
    await clock.advance(125)
    stored = await db.syncjobs.find_one({"_id": job["_id"]})
    assert stored["runCount"] == 2
    assert stored["version"] == 1 and stored["updatedAt"] == job["updatedAt"]


async def test_manual_run_starts_within_a_poll_interval(workers, db, clock, runner):
    store = SyncJobStore(db)
    job = await store.create("ws-a", spec(), clock.now())
    await workers.start()
    execution = await ExecutionStore(db, retention_days=30).queue_manual_run(job, clock.now())
    await clock.advance(2)
    done = await db.job_executions.find_one({"_id": execution["_id"]})
    assert done["status"] == "succeeded" and done["trigger"] == "manual"
    assert [request.execution["_id"] for request in runner.requests] == [execution["_id"]]


async def test_a_queued_run_of_a_deleted_job_is_canceled(workers, db, clock):
    job = await SyncJobStore(db).create("ws-a", spec(), clock.now())
    execution = await ExecutionStore(db, retention_days=30).queue_manual_run(job, clock.now())
    await db.syncjobs.delete_one({"_id": job["_id"]})
    await workers.start()
    await clock.advance(3)
    done = await db.job_executions.find_one({"_id": execution["_id"]})
    assert done["status"] == "canceled" and done["reason"] == "the job was deleted"


async def test_an_idle_poll_reads_the_change_mark_and_never_the_jobs(db, clock, worker_settings):
    await SyncJobStore(db).create("ws-a", spec(), clock.now())
    counted = Counted(db)
    group = Workers(counted, clock, worker_settings, FakeRunner())
    try:
        await group.start()
        await clock.advance(3)
        idle = await commands_of(counted, clock, 40)  # 20 polls, and no resync (every 60 s)
        assert idle[("change_marks", "find_one")] >= 19
        assert [call for call in idle if call[0] == "syncjobs"] == []
    finally:
        await group.close()


async def test_a_resync_that_finds_nothing_new_reads_the_jobs_once_and_writes_none(
    db, clock, worker_settings
):
    store = SyncJobStore(db)
    for _ in range(3):
        await store.create("ws-a", spec(), clock.now())
    counted = Counted(db)
    group = Workers(counted, clock, worker_settings, FakeRunner())
    try:
        await group.start()
        await clock.advance(3)
        calls = await commands_of(counted, clock, 60)  # one resync
        assert {call: n for call, n in calls.items() if call[0] == "syncjobs"} == {("syncjobs", "find"): 1}
    finally:
        await group.close()


async def test_an_edit_made_by_hand_without_the_mark_reaches_the_schedule_at_the_resync(workers, db, clock):
    """The mongo shell does not raise the change mark; the resync is the net for whatever the polls skip."""
    job = await SyncJobStore(db).create("ws-a", spec(), clock.now())
    leader = await workers.start()
    await db.syncjobs.update_one(
        {"_id": job["_id"]},
        {"$set": {"schedule.cron": "*/5 * * * *", "updatedAt": clock.now()}, "$inc": {"version": 1}},
    )
    await clock.advance(61)
    assert leader.timetable.next_fire_of(job["_id"]) == datetime(2030, 1, 7, 12, 5, tzinfo=UTC)


async def test_a_bulk_edit_by_hand_reaches_the_schedule_at_the_resync(workers, db, clock, monkeypatch):
    monkeypatch.setattr("worker.firing.CHANGE_BATCH", 1)  # more changed than a batch: one read of them all
    store = SyncJobStore(db)
    edited = [await store.create("ws-a", spec(), clock.now()) for _ in range(2)]
    deleted = await store.create("ws-a", spec(), clock.now())
    leader = await workers.start()
    await db.syncjobs.update_many(
        {"_id": {"$in": [job["_id"] for job in edited]}},
        {"$set": {"schedule.cron": "*/5 * * * *"}, "$inc": {"version": 1}},
    )
    await db.syncjobs.delete_one({"_id": deleted["_id"]})
    await clock.advance(61)
    for job in edited:
        assert leader.timetable.next_fire_of(job["_id"]) == datetime(2030, 1, 7, 12, 5, tzinfo=UTC)
    assert deleted["_id"] not in leader.timetable
