"""The faults of issue 8, each as its reproduction: a frozen leader, a busy dispatcher, lost missed slots,
the fencing window, slow takeover, a biased mean, stale heap entries, manual runs against the policy."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId
from structlog.testing import capture_logs

from models.errors import Conflict
from models.execution import ExecutionStatus, Trigger, new_execution_document
from models.execution_store import ExecutionStore
from tests.fakes import eventually, settle
from tests.worker.conftest import executions_of, wait_for_status
from worker.job_status import Commit, JobStatusWriter
from worker.leader_lock import LeaderLock, Lease
from worker.misfires import SLICE, missed_slots
from worker.scheduler import LeadershipLost, Scheduler
from worker.timetable import Timetable


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


async def test_a_leader_paused_past_its_lease_with_a_slot_due_steps_down_and_still_stops(
    workers, db, clock, add_job, freeze_alarm
):
    clock.set(utc(2030, 1, 7, 12, 0, 30))
    await add_job()
    leader = await workers.start()
    with capture_logs() as logs:
        # SIGSTOP for 40 s, then SIGCONT: the slot of 12:01 is due and the lease has lapsed.
        freeze_alarm.arm(5)
        clock.set(utc(2030, 1, 7, 12, 1, 10))
        await eventually(lambda: not leader.leading.is_set(), message="the leader to step down")
        await workers.stop(leader)
        freeze_alarm.arm(0)
    assert not freeze_alarm.fired
    assert any(entry["event"] == "lock_lost" for entry in logs)
    # The slot fell to the misfire handling of whoever leads next, not to a deposed leader.
    assert await db.job_executions.count_documents({}) == 0


async def test_fire_due_without_a_live_lease_ends_the_term_instead_of_returning(
    db, clock, worker_settings, runner, add_job
):
    await add_job()
    scheduler = Scheduler(db=db, runner=runner, clock=clock, settings=worker_settings, worker_id="host:1:w1")
    scheduler.lease = Lease(term=1, acts_until=clock.now() - timedelta(seconds=1))
    with pytest.raises(LeadershipLost):
        await scheduler.fire_due(term=1)


@pytest.fixture
async def unindexed_db():
    # mongomock checks unique indexes by scanning the whole collection for every inserted document
    # (seconds per 1,000 inserts): this test measures the worker's event loop, not the mock's indexes.
    from mongomock_motor import AsyncMongoMockClient

    return AsyncMongoMockClient(tz_aware=True)["syncjobs_catch_up"]


async def test_a_day_down_with_a_thousand_minutely_jobs_the_next_slot_is_on_time_and_every_miss_recorded(
    unindexed_db, clock, worker_settings, runner
):
    runner.hold = True  # one run holds the only run slot: the rest wait, so the test measures the schedule
    from tests.worker.conftest import Workers

    db = unindexed_db
    clock.set(utc(2030, 1, 8, 12, 0, 30))
    await minutely_jobs(db, 1000, next_run=utc(2030, 1, 7, 12, 0))  # the last leader died a day ago
    group = Workers(db, clock, worker_settings, runner)
    try:
        await group.start(max_concurrent=1)
        await clock.advance(30)  # 12:01:00, the first new slot
        # The clock stands still from here: a loaded machine may take longer to write the 1,000 records,
        # never later in the schedule's time (queuedAt, next).
        await eventually(
            lambda: _count_is(db, {"scheduledFor": utc(2030, 1, 8, 12, 1)}, 1000),
            timeout=20,
            message="the 1,000 records of the first new slot",
        )
        first = await db.job_executions.find_one({"scheduledFor": utc(2030, 1, 8, 12, 1)})
        assert first["queuedAt"] == utc(2030, 1, 8, 12, 1)
        await eventually(
            lambda: db.job_executions.count_documents({"reason": "missed"}), message="the missed records"
        )
        await eventually(
            lambda: _count_is(db, {"reason": "missed"}, 1000), timeout=20, message="every missed record"
        )
        record = await db.job_executions.find_one({"reason": "missed"})
        assert record["missed"] == {
            "count": 1440,
            "firstSlot": utc(2030, 1, 7, 12, 0),
            "lastSlot": utc(2030, 1, 8, 11, 59),
        }
        assert await db.job_executions.count_documents({"scheduledFor": utc(2030, 1, 8, 12, 0)}) == 1000
    finally:
        await group.close()


async def test_catch_up_on_the_in_memory_database_never_holds_the_event_loop_for_100_ms(
    clock, worker_settings, runner
):
    """The in-memory database does each insert on the event loop, at a cost that grows with the collection
    (a scan per unique index per document): catch-up's writes are sized so that no step of any task holds
    the loop for long, timed as the chaos suite's watchdog does (CPU time per loop callback)."""
    from mongomock_motor import AsyncMongoMockClient

    from models.collections import ensure_indexes
    from tests.worker.chaos_world import Meter, Watchdog
    from tests.worker.conftest import Workers

    db = AsyncMongoMockClient(tz_aware=True)["syncjobs_catch_up_paced"]
    await ensure_indexes(db)
    runner.hold = True
    clock.set(utc(2030, 1, 8, 12, 0, 30))
    await minutely_jobs(db, 200, next_run=utc(2030, 1, 8, 10, 0))  # two hours down
    watchdog = Watchdog(Meter(), freeze_seconds=60)  # nothing subtracted: the database's time counts
    watchdog.install()
    group = Workers(db, clock, worker_settings, runner)
    try:
        await group.start(max_concurrent=1)
        await eventually(
            lambda: _count_is(db, {"reason": "missed"}, 200), timeout=30, message="every missed record"
        )
        # The newest slots are written after the missed ranges: wait for them too before stopping.
        await eventually(
            lambda: _count_is(db, {"scheduledFor": utc(2030, 1, 8, 12, 0)}, 200),
            timeout=30,
            message="every job's newest slot",
        )
    finally:
        watchdog.uninstall()
        await group.close()
    assert watchdog.worst < 0.1, f"{watchdog.worst * 1000:.0f} ms in {watchdog.worst_at}"


async def test_walking_a_week_of_minutely_slots_yields_to_other_tasks_every_slice():
    beats = 0

    async def heartbeat():
        nonlocal beats
        while True:
            beats += 1
            await asyncio.sleep(0)

    beating = asyncio.create_task(heartbeat())
    slots = await missed_slots("* * * * *", "UTC", utc(2030, 1, 1, 12, 0), utc(2030, 1, 8, 12, 0))
    beating.cancel()
    assert len(slots) == 7 * 1440 + 1
    assert beats >= len(slots) // SLICE  # other tasks ran between slices


async def minutely_jobs(db, count: int, *, next_run: datetime) -> None:
    """`count` minutely jobs as a leader that died left them: due at `next_run`."""
    from models.sync_job import SyncJobSpec, new_job_document

    spec = SyncJobSpec.model_validate(
        {
            "name": "minutely",
            "dataSourceId": "a" * 24,
            "destinationDatabaseId": "b" * 24,
            "schedule": {"cron": "* * * * *", "timezone": "UTC"},
        }
    )
    docs = []
    for _ in range(count):
        doc = new_job_document("ws-a", spec, next_run - timedelta(days=2))
        doc["nextRunAt"] = next_run
        docs.append(doc)
    await db.syncjobs.insert_many(docs)


async def _count_is(db, query, expected) -> bool:
    return await db.job_executions.count_documents(query) == expected


async def test_a_run_waiting_for_its_job_lock_does_not_poll(workers, db, clock, runner, add_job):
    runner.hold = True
    job = await add_job(overlapPolicy="queue")
    leader = await workers.start()
    tries = []
    acquire = leader.locks.acquire

    async def counted(*args, **kwargs):
        tries.append(clock.now())
        return await acquire(*args, **kwargs)

    leader.locks.acquire = counted
    await clock.advance(61)
    await clock.advance(60)  # 12:02: the second slot queues behind the first, which still runs
    waiting = (await executions_of(db, job["_id"]))[1]
    assert waiting["status"] == "queued"
    for _ in range(20):
        await settle()
    await clock.advance(30)
    # One try per slot and none while waiting: it wakes on the release or at the lock's lease.
    assert len(tries) == 2, tries
    runner.hold = False
    runner.release.set()
    await wait_for_status(db, waiting["_id"], "succeeded")


async def fired_by_a_dead_leader(db, job, slot: datetime) -> dict:
    """Term 1 wrote this slot's execution and died before it started it (or moved `nextRunAt`)."""
    fired = new_execution_document(job=job, trigger=Trigger.SCHEDULE, scheduled_for=slot, now=slot)
    fired["firedTerm"] = 1
    await db.job_executions.insert_one(fired)
    await db.worker_locks.insert_one(
        {"_id": "sync-worker", "owner": "dead:1:x", "term": 1, "expiresAt": slot + timedelta(seconds=20)}
    )
    return fired


async def test_a_slot_fired_by_a_leader_that_died_before_moving_next_run_keeps_one_record_per_slot(
    workers, db, clock, add_job
):
    job = await add_job(nextRunAt=utc(2030, 1, 7, 12, 5), misfireGraceSeconds=300)
    await fired_by_a_dead_leader(db, job, utc(2030, 1, 7, 12, 5))
    clock.set(utc(2030, 1, 7, 12, 8, 30))
    await workers.start()
    await settle()
    runs = await executions_of(db, job["_id"])
    by_slot = {(run["scheduledFor"], run["attempt"]): run for run in runs}
    assert len(by_slot) == len(runs) == 3
    stale = by_slot[(utc(2030, 1, 7, 12, 5), 1)]
    assert (stale["status"], stale["reason"]) == ("skipped", "missed") and "missed" not in stale
    missed = by_slot[(utc(2030, 1, 7, 12, 6), 1)]  # a range takes its first slot's key
    assert missed["missed"] == {
        "count": 2,
        "firstSlot": utc(2030, 1, 7, 12, 6),
        "lastSlot": utc(2030, 1, 7, 12, 7),
    }
    newest = by_slot[(utc(2030, 1, 7, 12, 8), 1)]
    await wait_for_status(db, newest["_id"], "succeeded")


async def test_a_leader_killed_before_its_catch_up_is_written_leaves_the_missed_slots_to_the_next(
    workers, db, clock, add_job, worker_settings, monkeypatch
):
    # Found by the process chaos suite (tests/test_chaos_processes.py): a leader loaded, confirmed the
    # job's next slot as nextRunAt and was killed before catch-up wrote the slots missed before it; the
    # next leader, starting from that nextRunAt, found nothing missed, and those slots had no record.
    from worker.recovery import Recovery

    job = await add_job(nextRunAt=utc(2030, 1, 7, 12, 5))
    clock.set(utc(2030, 1, 7, 12, 8, 30))

    async def killed_before_writing(self, missed, term, now):
        await asyncio.Event().wait()

    monkeypatch.setattr(Recovery, "catch_up", killed_before_writing)
    first = await workers.start("w1")
    assert first.leading.is_set()
    await workers.crash(first)
    monkeypatch.undo()
    assert (await db.syncjobs.find_one({"_id": job["_id"]}))["nextRunAt"] == utc(2030, 1, 7, 12, 5)
    await clock.advance(worker_settings.worker_lease_seconds + 1)
    await workers.start("w2")
    await settle()
    records = await executions_of(db, job["_id"])
    assert [record["missed"] for record in records if record.get("missed")] == [
        {"count": 4, "firstSlot": utc(2030, 1, 7, 12, 5), "lastSlot": utc(2030, 1, 7, 12, 8)}
    ]
    fired = [record["scheduledFor"] for record in records if not record.get("missed")]
    assert fired == [utc(2030, 1, 7, 12, 9)]


async def test_a_leader_that_recorded_missed_slots_and_died_before_moving_next_run_leaves_one_range(
    workers, db, clock, add_job
):
    # Found by the process chaos suite: the next leader read the recorded range through a projection that
    # left out its first slot, failed on it at every takeover, and no slot was fired again.
    job = await add_job(nextRunAt=utc(2030, 1, 7, 12, 5), misfireGraceSeconds=30)
    store = ExecutionStore(db, retention_days=30)
    first, last = utc(2030, 1, 7, 12, 5), utc(2030, 1, 7, 12, 7)
    await store.queue([store.missed_record(job, count=3, first=first, last=last, now=last)])
    clock.set(utc(2030, 1, 7, 12, 8, 10))
    leader = await workers.start()
    await settle()
    assert leader.leading.is_set()
    records = await executions_of(db, job["_id"])
    assert [record["missed"] for record in records if record.get("missed")] == [
        {"count": 3, "firstSlot": first, "lastSlot": last}
    ]
    fired = [record for record in records if not record.get("missed")]
    assert [record["scheduledFor"] for record in fired] == [utc(2030, 1, 7, 12, 8)]
    await wait_for_status(db, fired[0]["_id"], "succeeded")


async def test_a_stale_slot_past_its_grace_is_not_run(workers, db, clock, add_job, runner):
    job = await add_job(nextRunAt=utc(2030, 1, 7, 12, 6), misfireGraceSeconds=60)
    stale = await fired_by_a_dead_leader(db, job, utc(2030, 1, 7, 12, 5))
    clock.set(utc(2030, 1, 7, 12, 20, 10))
    await workers.start()
    await clock.advance(2)
    done = await db.job_executions.find_one({"_id": stale["_id"]})
    assert (done["status"], done["reason"]) == ("skipped", "missed")
    assert stale["_id"] not in [request.execution["_id"] for request in runner.requests]


async def test_a_deposed_leaders_schedule_write_lands_on_nothing_once_the_new_term_has_written_the_job(
    db, add_job
):
    job, other = await add_job(), await add_job(name="other")
    writer = JobStatusWriter(db)
    await writer.next_run([job["_id"], other["_id"]], utc(2031, 1, 1), term=1)
    await writer.schedule_applied([job["_id"]], job["version"], utc(2031, 1, 2), utc(2030, 1, 1), term=2)
    # Term 1's late writes, both kinds: on the job term 2 has written, nothing lands.
    await writer.next_run([job["_id"]], utc(2031, 1, 3), term=1)
    await writer.schedule_applied([job["_id"]], job["version"], utc(2031, 1, 4), utc(2030, 1, 1), term=1)
    stored = await db.syncjobs.find_one({"_id": job["_id"]})
    assert (stored["nextRunAt"], stored["fenceTerm"]) == (utc(2031, 1, 2), 2)
    # The fence is per job: term 2 has not written `other`, whose schedule is still term 1's to restate.
    await writer.next_run([other["_id"]], utc(2031, 1, 1), term=1)
    assert (await db.syncjobs.find_one({"_id": other["_id"]}))["fenceTerm"] == 1


async def test_a_run_cut_off_from_its_lock_cannot_overwrite_a_newer_runs_outcome(db, clock, add_job):
    job = await add_job()
    writer = JobStatusWriter(db)
    cut_off_started = clock.now()
    newer_started = cut_off_started + timedelta(minutes=2)  # its lock lapsed; the next run went ahead

    async def record(started_at, status, cursor):
        stored = await db.syncjobs.find_one({"_id": job["_id"]})
        return await writer.record_outcome(
            stored,
            execution_id=ObjectId(),
            status=status,
            started_at=started_at,
            finished_at=newer_started + timedelta(minutes=1),
            duration_ms=10,
            error=None if status == ExecutionStatus.SUCCEEDED else "late",
            cursors={"customers": cursor},
        )

    assert await record(newer_started, ExecutionStatus.SUCCEEDED, "newer") is Commit.WRITTEN
    assert await record(cut_off_started, ExecutionStatus.FAILED, "older") is Commit.SUPERSEDED
    stored = await db.syncjobs.find_one({"_id": job["_id"]})
    assert stored["cursors"] == {"customers": "newer"} and stored["lastRunStatus"] == "succeeded"
    assert stored["runCount"] == 1 and stored["lastRunAt"] == newer_started


async def test_a_lease_inside_the_skew_margin_is_not_current(db, clock):
    lock = LeaderLock(db, worker_id="host:1:w1", clock=clock, lease_seconds=30, skew_seconds=2)
    lease = await lock.acquire()
    assert await lock.is_current(lease.term)
    clock.set(clock.now() + timedelta(seconds=28, milliseconds=500))  # 1.5 s left: less than the margin
    assert not await lock.is_current(lease.term)


async def test_a_standby_takes_over_a_crashed_leader_within_the_lease_and_a_second(workers, db, clock):
    leader = await workers.start("w1")
    await clock.advance(5.5, step=0.5)
    standby = await workers.start("w2")  # its tries are out of step with the leader's renewals
    await clock.advance(15.5, step=0.5)  # the leader renewed at 10 s and 20 s
    lock = await db.worker_locks.find_one({"_id": "sync-worker"})
    await workers.crash(leader)
    crashed_at = clock.now()
    while not standby.leading.is_set():
        await clock.advance(0.25, step=0.25)
        assert clock.now() <= crashed_at + timedelta(seconds=31), "takeover took longer than the lease + 1 s"
    assert clock.now() >= lock["expiresAt"]


async def test_abandoned_runs_do_not_bias_the_mean_duration(db, clock, add_job):
    job = await add_job()
    writer = JobStatusWriter(db)
    outcomes = [
        (ExecutionStatus.SUCCEEDED, 1000),
        (ExecutionStatus.ABANDONED, None),
        (ExecutionStatus.FAILED, 3000),
    ]
    for status, duration in outcomes:
        stored = await db.syncjobs.find_one({"_id": job["_id"]})
        await writer.record_outcome(
            stored,
            execution_id=ObjectId(),
            status=status,
            started_at=clock.now(),
            finished_at=clock.now(),
            duration_ms=duration,
            error=None,
            cursors={},
        )
    stored = await db.syncjobs.find_one({"_id": job["_id"]})
    assert stored["runCount"] == 3 and stored["avgDurationMs"] == 2000


async def test_a_job_edited_thousands_of_times_keeps_a_small_heap():
    timetable = Timetable()
    job = ObjectId()
    now = utc(2030, 1, 1, 12, 0)
    crons = ["* * * * *", "*/5 * * * *"]
    for edit in range(5_000):
        timetable.put(job, crons[edit % 2], "UTC", now)
    assert len(timetable._heap) <= 2 + 1024 + 2
    assert timetable.next_fire() == utc(2030, 1, 1, 12, 5)


@pytest.mark.parametrize("policy", ["queue", "cancel_running", "skip"])
async def test_a_manual_run_while_a_scheduled_run_goes_follows_the_overlap_policy(
    workers, db, clock, runner, add_job, policy
):
    runner.hold = True
    job = await add_job(overlapPolicy=policy)
    await workers.start()
    await clock.advance(61)
    scheduled = (await executions_of(db, job["_id"]))[0]
    await wait_for_status(db, scheduled["_id"], "running")
    store = ExecutionStore(db, retention_days=30)
    if policy == "skip":
        with pytest.raises(Conflict) as refused:
            await store.queue_manual_run(job, clock.now())
        assert refused.value.details["executionId"] == str(scheduled["_id"])
        return
    manual = await store.queue_manual_run(job, clock.now())
    with pytest.raises(Conflict):
        await store.queue_manual_run(job, clock.now())  # one manual run waits at most
    await clock.advance(2)
    if policy == "cancel_running":
        done = await wait_for_status(db, scheduled["_id"], "canceled")
        assert done["reason"] == "replaced by a manual run"
        await wait_for_status(db, manual["_id"], "running")
        runner.hold = False
        runner.release.set()
        await wait_for_status(db, manual["_id"], "succeeded")
    else:
        assert (await db.job_executions.find_one({"_id": manual["_id"]}))["status"] == "queued"
        runner.hold = False
        runner.release.set()
        first = await wait_for_status(db, scheduled["_id"], "succeeded")
        second = await wait_for_status(db, manual["_id"], "succeeded")
        assert first["finishedAt"] <= second["startedAt"]


async def test_a_slot_a_deposed_leader_inserts_after_catch_up_read_the_records_keeps_one_record(
    workers, db, clock, add_job, monkeypatch
):
    # Found by the chaos suite (CHAOS_SEED=22, tests/worker/test_chaos_examples.py): a leader paused between
    # its lease check and its insert woke after the next leader's catch-up had read the records, and
    # inserted the slot it was firing. No filter can hold an insert back: the range's record takes that
    # slot's key, so the later of the two is refused; here the range is, and it goes on from the next slot.
    job = await add_job(nextRunAt=utc(2030, 1, 7, 12, 5), misfireGraceSeconds=60)
    slot = utc(2030, 1, 7, 12, 5)
    read = ExecutionStore.scheduled_since

    async def read_then_the_late_insert(self, first_by_job):
        recorded = await read(self, first_by_job)
        late = new_execution_document(job=job, trigger=Trigger.SCHEDULE, scheduled_for=slot, now=slot)
        await db.job_executions.insert_one({**late, "firedTerm": 1})
        return recorded

    monkeypatch.setattr(ExecutionStore, "scheduled_since", read_then_the_late_insert)
    clock.set(utc(2030, 1, 7, 12, 8, 30))
    await workers.start()
    await settle()
    records = await executions_of(db, job["_id"])
    slots = [(record["scheduledFor"], record.get("missed")) for record in records]
    assert sorted(slots, key=lambda slot: slot[0]) == [
        (utc(2030, 1, 7, 12, 5), None),  # the late insert: skipped as missed by whoever dispatches it
        (
            utc(2030, 1, 7, 12, 6),
            {"count": 2, "firstSlot": utc(2030, 1, 7, 12, 6), "lastSlot": utc(2030, 1, 7, 12, 7)},
        ),
        (utc(2030, 1, 7, 12, 8), None),  # the newest, within grace: run late
    ]


async def test_a_range_catch_up_finds_written_already_is_not_written_again_from_its_next_slot(
    workers, db, clock, add_job, monkeypatch
):
    # The other reason a range's insert is refused: it is there already (this catch-up ran before and its
    # read did not see it). That is no fired slot: nothing more is written.
    job = await add_job(nextRunAt=utc(2030, 1, 7, 12, 5), misfireGraceSeconds=30)
    store = ExecutionStore(db, retention_days=30)
    first, last = utc(2030, 1, 7, 12, 5), utc(2030, 1, 7, 12, 7)
    await store.queue([store.missed_record(job, count=3, first=first, last=last, now=last)])

    async def read_nothing(self, first_by_job):
        return []

    monkeypatch.setattr(ExecutionStore, "scheduled_since", read_nothing)
    clock.set(utc(2030, 1, 7, 12, 8, 10))
    await workers.start()
    await settle()
    records = await executions_of(db, job["_id"])
    assert [record["missed"] for record in records if record.get("missed")] == [
        {"count": 3, "firstSlot": first, "lastSlot": last}
    ]
