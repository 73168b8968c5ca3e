"""Bounded batches and event-driven dispatch (issue 11): firing in chunks, changes applied with one read,
retries dispatched when they come due, and no re-reading of the queue after each run."""

from datetime import UTC, datetime, timedelta

import pytest
from pymongo.errors import AutoReconnect
from structlog.testing import capture_logs

from executor.outcome import RunOutcome
from models.execution import ExecutionStatus
from models.execution_store import ExecutionStore
from models.sync_job import SyncJobSpec, new_job_document
from tests.fakes import eventually, settle
from tests.worker.conftest import Workers, wait_for_status
from worker.change_feed import Change
from worker.firing import INSERT_CHUNK


@pytest.fixture
async def unindexed_db():
    # mongomock checks unique indexes by scanning the collection for every inserted document (seconds per
    # 1,000 inserts); these tests count calls and order events, which the indexes do not change.
    from mongomock_motor import AsyncMongoMockClient

    return AsyncMongoMockClient(tz_aware=True)["syncjobs_batches"]


async def minutely_jobs(db, clock, count: int) -> None:
    spec = SyncJobSpec.model_validate(
        {
            "name": "minutely",
            "dataSourceId": "a" * 24,
            "destinationDatabaseId": "b" * 24,
            "schedule": {"cron": "* * * * *", "timezone": "UTC"},
        }
    )
    await db.syncjobs.insert_many([new_job_document("ws-a", spec, clock.now()) for _ in range(count)])


async def test_twelve_hundred_due_slots_are_written_in_chunks_and_runs_start_before_the_last_chunk(
    unindexed_db, clock, worker_settings, runner
):
    db = unindexed_db
    clock.set(datetime(2030, 1, 7, 12, 0, 30, tzinfo=UTC))
    await minutely_jobs(db, clock, 1200)
    runner.hold = True
    group = Workers(db, clock, worker_settings, runner)
    events = []
    try:
        leader = await group.start(max_concurrent=1)
        queue = leader.store.queue

        async def recorded(docs):
            events.append(("insert", len(docs), len(runner.requests)))
            return await queue(docs)

        leader.store.queue = recorded
        await clock.advance(30)
        sizes = [size for _, size, _ in events]
        # The first chunk is the largest; the rest are sized by what the writes cost (worker.paced_writes).
        assert sizes[0] == INSERT_CHUNK and max(sizes) == INSERT_CHUNK and sum(sizes) == 1200
        assert events[-1][2] >= 1, "a run of the first chunk started before the last chunk was written"
        assert (
            await db.job_executions.count_documents({"scheduledFor": datetime(2030, 1, 7, 12, 1, tzinfo=UTC)})
            == 1200
        )
    finally:
        await group.close()


async def test_a_failed_chunk_is_retried_with_backoff_and_the_leader_keeps_its_lease(
    workers, db, clock, add_job
):
    clock.set(datetime(2030, 1, 7, 12, 0, 30, tzinfo=UTC))
    jobs = [await add_job(name=f"j{i}") for i in range(3)]
    leader = await workers.start()
    queue = leader.store.queue
    failures = []

    async def flaky(docs):
        if not failures:
            failures.append(len(docs))
            await db.job_executions.insert_many(docs[:1])  # part of it landed before the error
            raise AutoReconnect("primary stepped down")
        return await queue(docs)

    leader.store.queue = flaky
    with capture_logs() as logs:
        await clock.advance(32)
    assert failures == [3] and leader.leading.is_set()
    assert any(entry["event"] == "executions_insert_failed" for entry in logs)
    for job in jobs:
        assert await db.job_executions.count_documents({"jobId": job["_id"]}) == 1


async def test_changes_to_many_jobs_are_applied_with_one_read(db, clock, worker_settings, runner, add_job):
    from worker.leader_lock import Lease
    from worker.scheduler import Scheduler

    jobs = [await add_job(name=f"j{i}") for i in range(50)]
    scheduler = Scheduler(db=db, runner=runner, clock=clock, settings=worker_settings, worker_id="host:1:w1")
    scheduler.lease = Lease(term=1, acts_until=clock.now() + timedelta(hours=1))
    reads = []
    find = scheduler.firing._jobs.find

    def counted(*args, **kwargs):
        reads.append(args)
        return find(*args, **kwargs)

    scheduler.firing._jobs.find = counted
    await scheduler.firing.apply_changes([Change("job", job["_id"]) for job in jobs], term=1)
    assert len(reads) == 1 and len(scheduler.timetable) == 50


async def test_a_retry_is_dispatched_when_it_comes_due_not_a_poll_later(workers, db, clock, runner, add_job):
    workers.settings = workers.settings.model_copy(update={"poll_interval_seconds": 600})
    runner.outcomes.append(RunOutcome(ExecutionStatus.FAILED, error="boom"))
    job = await add_job(
        schedule={"cron": "* * * * *", "timezone": "UTC"},
        retry={"maxAttempts": 2, "backoffSeconds": 10, "backoffMultiplier": 2, "maxBackoffSeconds": 60},
    )
    clock.set(datetime(2030, 1, 7, 12, 0, 59, tzinfo=UTC))
    await workers.start()
    await clock.advance(1)
    first = await db.job_executions.find_one({"jobId": job["_id"]})
    await wait_for_status(db, first["_id"], "failed")
    retry = await db.job_executions.find_one({"retryOf": first["_id"]})
    await clock.advance((retry["runAfter"] - clock.now()).total_seconds() + 0.5, step=0.5)
    await wait_for_status(db, retry["_id"], "succeeded")


def count_reads(scheduler) -> list:
    reads = []
    next_up = scheduler.store.next_up

    async def counted(*args, **kwargs):
        reads.append(args)
        return await next_up(*args, **kwargs)

    scheduler.store.next_up = counted
    return reads


async def held_manual_runs(workers, db, clock, runner, add_job, count: int):
    """`count` manual runs queued at once on a worker of 4 run slots that never polls (a 600 s poll, a clock
    standing still), held open once started; returns the worker when as many as fit are running."""
    workers.settings = workers.settings.model_copy(update={"poll_interval_seconds": 600})
    runner.hold = True
    jobs = [
        await add_job(name=f"j{i}", schedule={"cron": "0 0 1 1 *", "timezone": "UTC"}) for i in range(count)
    ]
    leader = await workers.start()
    store = ExecutionStore(db, retention_days=30)
    for job in jobs:
        await store.queue_manual_run(job, clock.now())
    leader.dispatcher.wake.set()
    await eventually(lambda: runner.active == min(count, 4))
    return leader


async def test_a_full_worker_claims_what_waited_as_its_runs_end_not_a_poll_later(
    workers, db, clock, runner, add_job
):
    leader = await held_manual_runs(workers, db, clock, runner, add_job, 6)
    assert await db.job_executions.count_documents({"status": "queued"}) == 2  # not held in memory
    reads = count_reads(leader)
    runner.hold = False
    runner.release.set()
    # The clock stands still: no poll comes; the runs ending are what makes the worker take the two that
    # waited, from what its last read found, without reading the queue again per run (at most once more,
    # when that list has run dry, to see whether anything else came).
    await eventually(lambda: _count_succeeded(db, 6))
    assert len(reads) <= 1


async def test_runs_ending_with_nothing_waiting_do_not_make_the_dispatcher_read_the_queue(
    workers, db, clock, runner, add_job
):
    leader = await held_manual_runs(workers, db, clock, runner, add_job, 3)
    reads = count_reads(leader)
    runner.hold = False
    runner.release.set()
    await eventually(lambda: _count_succeeded(db, 3))
    await settle()
    assert reads == []


async def _count_succeeded(db, count: int) -> bool:
    return await db.job_executions.count_documents({"status": "succeeded"}) == count


YEARLY = {"cron": "0 0 1 1 *", "timezone": "UTC"}


async def one_slot_taken(workers, db, clock, runner, jobs: list[dict]):
    """A worker of one run slot that never polls (a 600 s poll, a clock standing still), a manual run of
    each of `jobs` queued and announced; returns (the worker, the store) once the first run holds the slot
    and the others wait in what its read found."""
    workers.settings = workers.settings.model_copy(
        update={"poll_interval_seconds": 600, "max_concurrent_runs": 1}
    )
    runner.hold = True
    leader = await workers.start()
    store = ExecutionStore(db, retention_days=30)
    for job in jobs:
        await store.queue_manual_run(job, clock.now())
    leader.dispatcher.look()
    await eventually(lambda: runner.active == 1)
    return leader, store


async def test_a_run_announced_while_the_worker_was_full_takes_its_turn_before_older_waiting_runs(
    workers, db, clock, runner, add_job
):
    # One run slot, no poll: ws-a's second and third runs wait in what the last read found; ws-b's run,
    # queued and announced while the slot was taken, still goes before ws-a's third (workspaces take turns).
    mine = [await add_job(name=f"a{i}", schedule=YEARLY) for i in range(3)]
    theirs = await add_job(name="b", schedule=YEARLY, workspaceId="ws-b")
    leader, store = await one_slot_taken(workers, db, clock, runner, mine)
    await store.queue_manual_run(theirs, clock.now())
    leader.dispatcher.look()
    await settle()
    runner.hold = False
    runner.release.set()
    await eventually(lambda: _count_succeeded(db, 4))
    names = [request.job["name"] for request in runner.requests]
    assert names == ["a0", "a1", "b", "a2"]


async def test_a_waiting_run_taken_more_than_a_second_after_its_read_starts_from_its_job_as_stored_now(
    workers, db, clock, runner, add_job
):
    first, second = [await add_job(name=f"j{i}", schedule=YEARLY) for i in range(2)]
    await one_slot_taken(workers, db, clock, runner, [first, second])
    # The second run waits with its job as read beside it; an edit lands, and the first run ends later.
    await db.syncjobs.update_one({"_id": second["_id"]}, {"$set": {"timeoutSeconds": 77}})
    await clock.advance(2)
    runner.hold = False
    runner.release.set()
    await eventually(lambda: _count_succeeded(db, 2))
    assert [request.job["timeoutSeconds"] for request in runner.requests] == [first["timeoutSeconds"], 77]


async def test_after_a_lost_claim_the_next_pass_reads_the_queue_instead_of_taking_from_the_old_read(
    workers, db, clock, runner, add_job
):
    jobs = [await add_job(name=f"j{i}", schedule=YEARLY) for i in range(3)]
    leader, _ = await one_slot_taken(workers, db, clock, runner, jobs)
    reads = count_reads(leader)
    await leader.dispatcher.dispatch()  # what its last read left is fresh: no read
    assert reads == []
    leader.dispatcher.stale()  # a claim found its run taken or ended elsewhere
    await leader.dispatcher.dispatch()
    assert len(reads) == 1


async def test_a_run_canceled_while_it_waited_in_the_last_read_makes_the_worker_read_the_queue_again(
    workers, db, clock, runner, add_job
):
    jobs = [await add_job(name=f"j{i}", schedule=YEARLY) for i in range(3)]
    leader, store = await one_slot_taken(workers, db, clock, runner, jobs)
    waiting = await db.job_executions.find_one({"jobId": jobs[1]["_id"]})
    await store.cancel(waiting["_id"], clock.now(), "canceled by a user")
    started_at_each_read = []
    next_up = leader.store.next_up

    async def counted(*args, **kwargs):
        started_at_each_read.append(len(runner.requests))
        return await next_up(*args, **kwargs)

    leader.store.next_up = counted
    runner.hold = False
    runner.release.set()
    await eventually(lambda: _count_succeeded(db, 2))
    # The claim of the canceled run failed; the third run was found by a fresh read, not by the old one.
    assert started_at_each_read and started_at_each_read[0] == 1
    assert [request.job["name"] for request in runner.requests] == ["j0", "j2"]
