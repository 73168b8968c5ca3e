"""A draining worker (SIGTERM) stops claiming at once: runs waiting for a slot (never claimed: a full worker
takes nothing more) or for their job's lock stay queued for another worker, and only the runs it already
holds are finished within the grace."""

from tests.fakes import eventually
from tests.worker.conftest import executions_of, wait_for_status
from tests.worker.test_executions import start_run

YEARLY = {"cron": "0 0 1 1 *", "timezone": "UTC"}


def sigterm(workers, scheduler) -> None:
    """Begin the worker's graceful stop without moving the clock: its grace does not run out meanwhile."""
    for started, stop, _ in workers.started:
        if started is scheduler:
            stop.set()


async def drain_while_one_runs_and_one_waits(
    workers, db, clock, runner, first_job, second_job, *, second_in_hand: bool
):
    """Start a run of `first_job`, queue one of `second_job` that waits behind it (in this worker's hand
    when it waits for its job's lock; in the queue, unclaimed, when it waits for a run slot), SIGTERM the
    worker, let the first run end within the grace; returns the two executions."""
    runner.hold = True
    leader = await workers.start()
    first = await start_run(db, clock, first_job)
    await clock.advance(2)
    await wait_for_status(db, first["_id"], "running")
    second = await start_run(db, clock, second_job)
    await clock.advance(2)
    expected = {first["_id"], second["_id"]} if second_in_hand else {first["_id"]}
    assert leader.launcher.in_flight == expected  # the second waits
    sigterm(workers, leader)
    await eventually(lambda: leader.launcher.in_flight == {first["_id"]})  # let go at once
    runner.hold = False
    runner.release.set()  # the first run ends within the grace
    await workers.stop(leader)
    return first, second


async def test_a_draining_worker_starts_no_run_that_waited_for_a_slot(workers, db, clock, runner, add_job):
    workers.settings = workers.settings.model_copy(update={"max_concurrent_runs": 1})
    first_job, second_job = [await add_job(name=name, schedule=YEARLY) for name in ("first", "second")]
    first, second = await drain_while_one_runs_and_one_waits(
        workers, db, clock, runner, first_job, second_job, second_in_hand=False
    )
    assert (await db.job_executions.find_one({"_id": first["_id"]}))["status"] == "succeeded"
    assert (await db.job_executions.find_one({"_id": second["_id"]}))["status"] == "queued"
    assert [request.execution["_id"] for request in runner.requests] == [first["_id"]]
    assert await db.job_execution_locks.count_documents({}) == 0


async def test_a_draining_worker_does_not_wait_for_a_run_waiting_for_its_job_lock(
    workers, db, clock, runner, add_job
):
    runner.hold = True
    job = await add_job(overlapPolicy="queue")  # every minute
    leader = await workers.start()
    await clock.advance(61)  # 12:01 runs
    await clock.advance(60)  # 12:02 is taken in hand and waits for the job's lock (the queue policy)
    first, second = await executions_of(db, job["_id"])
    await wait_for_status(db, first["_id"], "running")
    assert leader.launcher.in_flight == {first["_id"], second["_id"]}
    sigterm(workers, leader)
    await eventually(lambda: leader.launcher.in_flight == {first["_id"]})  # let go at once
    runner.hold = False
    runner.release.set()  # the first run ends within the grace
    await workers.stop(leader)
    assert (await db.job_executions.find_one({"_id": first["_id"]}))["status"] == "succeeded"
    assert (await db.job_executions.find_one({"_id": second["_id"]}))["status"] == "queued"
    assert len(runner.requests) == 1


async def test_a_manual_run_of_a_busy_job_waits_in_the_queue_not_in_a_workers_hand(
    workers, db, clock, runner, add_job
):
    job = await add_job(schedule=YEARLY, overlapPolicy="queue")
    first, second = await drain_while_one_runs_and_one_waits(
        workers, db, clock, runner, job, job, second_in_hand=False
    )
    assert (await db.job_executions.find_one({"_id": first["_id"]}))["status"] == "succeeded"
    assert (await db.job_executions.find_one({"_id": second["_id"]}))["status"] == "queued"
    assert len(runner.requests) == 1
