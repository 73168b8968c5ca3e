"""The per-job lock in job_execution_locks: taken before the claim, renewed while the run goes, let go after
its outcome, and safe against a crash between any two of those steps."""

from datetime import timedelta

from models.execution import ExecutionStatus, Trigger, new_execution_document
from models.execution_store import ExecutionStore
from tests.fakes import eventually, settle
from tests.worker.conftest import wait_for_status
from tests.worker.test_executions import job_lock, start_run

YEARLY = {"cron": "0 0 1 1 *", "timezone": "UTC"}


async def test_a_crash_between_taking_the_lock_and_the_claim_only_delays_the_run(
    workers, db, clock, runner, add_job
):
    job = await add_job(schedule=YEARLY)
    execution = await start_run(db, clock, job)
    # A worker took the lock for this execution and died before moving it to running.
    await db.job_execution_locks.insert_one(
        job_lock(job, execution, "dead:1:x", expires_at=clock.now() + timedelta(seconds=30))
    )
    await workers.start()
    await clock.advance(20)
    assert (await db.job_executions.find_one({"_id": execution["_id"]}))["status"] == "queued"
    await clock.advance(12)  # the dead worker's lock lapses: the run goes, once
    done = await wait_for_status(db, execution["_id"], "succeeded")
    assert done["workerId"] == "host:1:w1" and len(runner.requests) == 1
    assert await db.job_execution_locks.find_one({"_id": job["_id"]}) is None


async def test_a_claim_that_finds_its_execution_canceled_meanwhile_lets_the_lock_go(
    workers, db, clock, runner, add_job
):
    job = await add_job(schedule=YEARLY)
    leader = await workers.start()
    taken = []
    acquire = leader.locks.acquire

    async def canceled_first(job_id, execution_id, **kwargs):
        # The API cancels the run between the dispatcher's read and the claim.
        await ExecutionStore(db, retention_days=30).cancel(execution_id, clock.now(), "raced")
        taken.append(await acquire(job_id, execution_id, **kwargs))
        return taken[-1]

    leader.locks.acquire = canceled_first
    execution = await start_run(db, clock, job)
    await clock.advance(2)
    await eventually(lambda: taken == [True])
    await settle()
    assert await db.job_execution_locks.find_one({"_id": job["_id"]}) is None
    assert (await db.job_executions.find_one({"_id": execution["_id"]}))["status"] == "canceled"
    assert runner.requests == []


async def test_a_claim_ends_a_dead_workers_run_whose_job_lock_lapsed_then_runs(
    workers, db, clock, runner, add_job
):
    job = await add_job(schedule=YEARLY, overlapPolicy="queue")
    await workers.start()
    # After the term's recovery: a dead worker's run, still recorded running, its lock lapsed.
    dead = new_execution_document(job=job, trigger=Trigger.RETRY, scheduled_for=clock.now(), now=clock.now())
    dead.update({"status": "running", "workerId": "dead:1:x", "lockTerm": 0, "startedAt": clock.now()})
    await db.job_executions.insert_one(dead)
    await db.job_execution_locks.insert_one(
        job_lock(job, dead, "dead:1:x", expires_at=clock.now() - timedelta(seconds=1))
    )
    execution = await start_run(db, clock, job)
    await clock.advance(2)
    await wait_for_status(db, execution["_id"], "succeeded")
    abandoned = await db.job_executions.find_one({"_id": dead["_id"]})
    assert abandoned["status"] == ExecutionStatus.ABANDONED.value
    assert (
        abandoned["finishedAt"] <= (await db.job_executions.find_one({"_id": execution["_id"]}))["startedAt"]
    )


async def test_a_run_whose_lock_was_taken_from_it_is_stopped_at_its_next_renewal(
    workers, db, clock, runner, add_job
):
    runner.hold = True
    job = await add_job(schedule=YEARLY, retry={"maxAttempts": 1})
    await workers.start()
    execution = await start_run(db, clock, job)
    await clock.advance(2)
    await wait_for_status(db, execution["_id"], "running")
    lock = await db.job_execution_locks.find_one({"_id": job["_id"]})
    assert lock["executionId"] == execution["_id"] and lock["owner"] == "host:1:w1"
    # Another worker's recovery saw the lock lapse (this worker was cut off) and took it away.
    await db.job_execution_locks.delete_one({"_id": job["_id"]})
    await clock.advance(21)  # the next renewal, a third of the 60 s TTL
    done = await wait_for_status(db, execution["_id"], "canceled")
    assert done["reason"] == "the job lock was lost"


async def test_the_lock_is_renewed_while_the_run_goes(workers, db, clock, runner, add_job):
    runner.hold = True
    job = await add_job(schedule=YEARLY)
    await workers.start()
    execution = await start_run(db, clock, job)
    await clock.advance(2)
    await wait_for_status(db, execution["_id"], "running")
    first = await db.job_execution_locks.find_one({"_id": job["_id"]})
    await clock.advance(100)  # beyond the 60 s TTL: renewed every 20 s
    renewed = await db.job_execution_locks.find_one({"_id": job["_id"]})
    assert renewed["acquiredAt"] == first["acquiredAt"] and renewed["expiresAt"] > clock.now()
    assert renewed["heartbeatAt"] > first["heartbeatAt"]
    assert (await db.job_executions.find_one({"_id": execution["_id"]}))["status"] == "running"
