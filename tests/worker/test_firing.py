import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from structlog.testing import capture_logs

from tests.fakes import eventually
from tests.worker.conftest import executions_of, lose_and_regain, wait_for_status


async def test_due_slot_runs_once_and_the_job_status_is_recorded(workers, db, add_job):
    workers.clock.set(datetime(2030, 1, 7, 12, 0, 30, tzinfo=UTC))
    job = await add_job()
    await workers.start()
    await workers.clock.advance(31)
    runs = await executions_of(db, job["_id"])
    assert len(runs) == 1
    run = await wait_for_status(db, runs[0]["_id"], "succeeded")
    assert run["scheduledFor"] == datetime(2030, 1, 7, 12, 1, tzinfo=UTC)
    assert run["trigger"] == "schedule" and run["attempt"] == 1 and run["firedTerm"] == 1
    assert run["workerId"] == "host:1:w1" and run["durationMs"] >= 0 and run["expireAt"] > run["finishedAt"]
    stored = await db.syncjobs.find_one({"_id": job["_id"]})
    assert stored["lastRunStatus"] == "succeeded" and stored["runCount"] == 1
    assert stored["lastSuccessAt"] == run["finishedAt"] and stored["consecutiveFailures"] == 0
    assert stored["nextRunAt"] == datetime(2030, 1, 7, 12, 2, tzinfo=UTC)
    # The worker's writes leave version and updatedAt alone.
    assert stored["version"] == 1 and stored["updatedAt"] == job["updatedAt"]
    assert stored["scheduleAppliedVersion"] == 1
    # The run let its job's lock go once its outcome was recorded.
    assert await db.job_execution_locks.find_one({"_id": job["_id"]}) is None


async def test_every_slot_fires_in_its_own_timezone(workers, db, add_job):
    workers.clock.set(datetime(2030, 1, 7, 13, 59, 0, tzinfo=UTC))
    berlin = await add_job(schedule={"cron": "0 15 * * *", "timezone": "Europe/Berlin"})  # 14:00 UTC
    tokyo = await add_job(schedule={"cron": "0 15 * * *", "timezone": "Asia/Tokyo"})  # 06:00 UTC
    await workers.start()
    await workers.clock.advance(61, step=5)
    assert len(await executions_of(db, berlin["_id"])) == 1
    assert await executions_of(db, tokyo["_id"]) == []


async def test_disabled_jobs_do_not_fire(workers, db, add_job):
    job = await add_job(enabled=False)
    await workers.start()
    await workers.clock.advance(180, step=5)
    assert await executions_of(db, job["_id"]) == []
    assert (await db.syncjobs.find_one({"_id": job["_id"]}))["nextRunAt"] is None


async def test_no_slot_runs_twice_across_a_takeover(workers, db, add_job):
    workers.runner.hold = False
    jobs = [await add_job(name=f"j{i}") for i in range(5)]
    leader = await workers.start("w1")
    await workers.start("w2")
    await workers.clock.advance(125, step=5)
    await workers.crash(leader)
    await workers.clock.advance(300, step=5)
    for job in jobs:
        slots = [
            (run["scheduledFor"], run["attempt"])
            for run in await executions_of(db, job["_id"], trigger="schedule")
        ]
        assert len(slots) == len(set(slots)), slots
        assert len(slots) >= 6


async def test_misses_while_no_leader_ran_are_recorded_and_the_newest_runs_once(workers, db, add_job, clock):
    clock.set(datetime(2030, 1, 7, 12, 0, 10, tzinfo=UTC))
    # The last leader planned 11:00 and nobody fired since: 11:00-11:59 are recorded, 12:00 runs.
    job = await add_job(nextRunAt=datetime(2030, 1, 7, 11, 0, tzinfo=UTC), misfireGraceSeconds=300)
    await workers.start()
    runs = await executions_of(db, job["_id"])
    skipped = [run for run in runs if run["status"] == "skipped"]
    ran = [run for run in runs if run["status"] != "skipped"]
    assert len(skipped) == 1 and skipped[0]["reason"] == "missed"
    assert skipped[0]["missed"] == {
        "count": 60,
        "firstSlot": datetime(2030, 1, 7, 11, 0, tzinfo=UTC),
        "lastSlot": datetime(2030, 1, 7, 11, 59, tzinfo=UTC),
    }
    assert [run["scheduledFor"] for run in ran] == [datetime(2030, 1, 7, 12, 0, tzinfo=UTC)]
    await wait_for_status(db, ran[0]["_id"], "succeeded")


async def test_misses_older_than_the_grace_are_not_run(workers, db, add_job, clock):
    clock.set(datetime(2030, 1, 7, 12, 30, tzinfo=UTC))
    job = await add_job(
        schedule={"cron": "0 * * * *", "timezone": "UTC"},
        nextRunAt=datetime(2030, 1, 7, 10, 0, tzinfo=UTC),
        misfireGraceSeconds=60,
    )
    await workers.start()
    runs = await executions_of(db, job["_id"])
    assert [(run["status"], run["missed"]["count"]) for run in runs] == [("skipped", 3)]


async def test_polling_fallback_is_logged_once_however_often_leadership_is_regained(workers):
    with capture_logs() as logs:
        leader = await workers.start()
        await workers.clock.advance(10)
        for _ in range(2):
            await lose_and_regain(workers, leader)
    assert [entry["term"] for entry in logs if entry["event"] == "lock_acquired"] == [1, 2, 3]
    events = [entry for entry in logs if entry["event"] == "change_streams_unsupported_polling"]
    assert len(events) == 1 and "no change streams" in events[0]["reason"]


@pytest.mark.memory_only(
    reason="100 full runs are ~1,000 round trips to a single-threaded server sharing the cores (5-30 s); "
    "the batching under test is the scheduler's own"
)
async def test_hundreds_of_jobs_sharing_a_schedule_fire_in_one_batch(workers, db, add_job, monkeypatch):
    jobs = [await add_job(name=f"j{i}") for i in range(100)]
    leader = await workers.start()
    inserts = []
    original = leader.store.queue

    async def counting(docs):
        inserts.append(len(docs))
        return await original(docs)

    monkeypatch.setattr(leader.store, "queue", counting)
    await workers.clock.advance(60)
    await eventually(lambda: workers.runner.requests and len(workers.runner.requests) == 100, timeout=20)
    assert inserts == [100]
    assert len(leader.timetable) == len(jobs)
    assert await db.job_executions.count_documents({"status": "succeeded"}) == 100


async def test_a_job_document_broken_by_hand_stops_only_that_job(workers, db, add_job):
    broken = await add_job(name="broken")
    await db.syncjobs.update_one({"_id": broken["_id"]}, {"$set": {"schedule.timezone": "Mars/Olympus_Mons"}})
    healthy = await add_job(name="healthy")
    with capture_logs() as logs:
        leader = await workers.start()
        await workers.clock.advance(61)
    assert broken["_id"] not in leader.timetable and leader.leading.is_set()
    assert len(await executions_of(db, healthy["_id"])) == 1
    assert await executions_of(db, broken["_id"]) == []
    assert any(entry["event"] == "job_schedule_invalid" for entry in logs)


async def test_an_unexpected_launch_error_fails_the_execution_instead_of_leaving_it_queued(
    workers, db, add_job, monkeypatch
):
    job = await add_job()
    leader = await workers.start()

    async def broken_acquire(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(leader.store, "claim", broken_acquire)
    await workers.clock.advance(61)
    runs = await executions_of(db, job["_id"])
    assert [(run["status"], run["error"]) for run in runs] == [
        ("failed", "the worker failed to run it: RuntimeError('bug')")
    ]


async def test_load_confirmations_written_after_a_fire_do_not_move_next_run_back(
    db, clock, worker_settings, runner, add_job
):
    from worker.leader_lock import Lease
    from worker.scheduler import Scheduler

    clock.set(datetime(2030, 1, 7, 12, 0, 30, tzinfo=UTC))
    # Neither job was ever confirmed: the load owes both a write, the hourly one's first.
    await add_job(name="hourly", schedule={"cron": "0 * * * *", "timezone": "UTC"})
    job = await add_job(name="minutely")
    scheduler = Scheduler(db=db, runner=runner, clock=clock, settings=worker_settings, worker_id="host:1:w1")
    scheduler.lease = Lease(term=1, acts_until=clock.now() + timedelta(hours=1))
    await scheduler.load_all(term=1)
    await asyncio.sleep(0)  # the confirmations plan both writes, make the first, and yield
    clock.set(datetime(2030, 1, 7, 12, 1, 0, tzinfo=UTC))
    assert await scheduler.fire_due(term=1) == 1  # a fire slips in and records 12:02
    await scheduler.firing.confirming
    stored = await db.syncjobs.find_one({"_id": job["_id"]})
    assert stored["nextRunAt"] == datetime(2030, 1, 7, 12, 2, tzinfo=UTC)
    assert stored["scheduleAppliedVersion"] == 1
    await scheduler.launcher.drain(0)
