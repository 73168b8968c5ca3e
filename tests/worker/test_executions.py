"""The life of an execution: cancel, overlap, retries, recovery, concurrency and shutdown."""

from datetime import timedelta

from structlog.testing import capture_logs

from executor.outcome import RunOutcome
from models.execution import ExecutionStatus
from models.execution_store import ExecutionStore
from tests.fakes import eventually
from tests.worker.conftest import depose, executions_of, wait_for_status


def job_lock(job, execution, owner: str, *, expires_at) -> dict:
    """A job lock document as another worker wrote it."""
    return {
        "_id": job["_id"],
        "owner": owner,
        "executionId": execution["_id"],
        "term": 0,
        "acquiredAt": expires_at - timedelta(seconds=60),
        "heartbeatAt": expires_at - timedelta(seconds=60),
        "expiresAt": expires_at,
    }


async def start_run(db, clock, job) -> dict:
    return await ExecutionStore(db, retention_days=30).queue_manual_run(job, clock.now())


async def test_cancel_request_stops_the_running_sync(workers, db, clock, runner, add_job):
    runner.hold = True
    job = await add_job(schedule={"cron": "0 0 1 1 *", "timezone": "UTC"})
    await workers.start()
    execution = await start_run(db, clock, job)
    await clock.advance(2)
    await wait_for_status(db, execution["_id"], "running")
    lock = await db.job_execution_locks.find_one({"_id": job["_id"]})
    assert lock["executionId"] == execution["_id"] and lock["expiresAt"] > clock.now()
    await ExecutionStore(db, retention_days=30).request_cancel(
        "ws-a", job["_id"], execution["_id"], clock.now()
    )
    await clock.advance(2)
    done = await wait_for_status(db, execution["_id"], "canceled")
    assert done["reason"] == "cancel requested" and done["finishedAt"] is not None
    assert await db.job_executions.count_documents({"status": "running"}) == 0
    assert await db.job_execution_locks.find_one({"_id": job["_id"]}) is None  # released with the run's end
    stored = await db.syncjobs.find_one({"_id": job["_id"]})
    assert stored["lastRunStatus"] == "canceled"
    assert await db.job_executions.count_documents({"retryOf": execution["_id"]}) == 0


async def test_overlap_skip_records_a_skipped_execution(workers, db, clock, runner, add_job):
    runner.hold = True
    job = await add_job(overlapPolicy="skip")
    await workers.start()
    await clock.advance(121)
    runs = await executions_of(db, job["_id"])
    assert [run["status"] for run in runs] == ["running", "skipped"]
    assert runs[1]["reason"].startswith("overlap") and runs[1]["blockedBy"] == runs[0]["_id"]
    assert len(runner.requests) == 1


async def test_overlap_queue_runs_after_the_current_one(workers, db, clock, runner, add_job):
    runner.hold = True
    job = await add_job(overlapPolicy="queue")
    await workers.start()
    await clock.advance(61)
    await clock.advance(60)
    runs = await executions_of(db, job["_id"])
    assert [run["status"] for run in runs] == ["running", "queued"]
    runner.hold = False
    runner.release.set()
    # No clock movement: the end of the first run wakes the dispatcher, not the next poll.
    await wait_for_status(db, runs[1]["_id"], "succeeded")
    assert len(runner.requests) == 2


async def test_overlap_cancel_running_replaces_the_old_run(workers, db, clock, runner, add_job):
    runner.hold = True
    job = await add_job(overlapPolicy="cancel_running")
    await workers.start()
    await clock.advance(61)
    await clock.advance(60)
    runs = await executions_of(db, job["_id"])
    first = await wait_for_status(db, runs[0]["_id"], "canceled")
    assert first["reason"] == "replaced by a newer scheduled run"
    await clock.advance(3)
    await wait_for_status(db, runs[1]["_id"], "running")


async def test_failed_runs_are_retried_with_backoff_until_attempts_run_out(
    workers, db, clock, runner, add_job
):
    runner.outcomes.extend([RunOutcome(ExecutionStatus.FAILED, error="boom", exit_code=1)] * 3)
    job = await add_job(
        schedule={"cron": "0 0 1 1 *", "timezone": "UTC"},
        retry={"maxAttempts": 3, "backoffSeconds": 10, "backoffMultiplier": 2, "maxBackoffSeconds": 60},
    )
    await workers.start()
    first = await start_run(db, clock, job)
    await clock.advance(2)
    await wait_for_status(db, first["_id"], "failed")
    retry = await db.job_executions.find_one({"retryOf": first["_id"]})
    assert retry["trigger"] == "retry" and retry["attempt"] == 2 and retry["status"] == "queued"
    delay = (retry["runAfter"] - retry["queuedAt"]).total_seconds()
    assert 5 <= delay <= 10
    await clock.advance(12)
    await wait_for_status(db, retry["_id"], "failed")
    third = await db.job_executions.find_one({"retryOf": retry["_id"]})
    assert third["attempt"] == 3 and 10 <= (third["runAfter"] - third["queuedAt"]).total_seconds() <= 20
    await clock.advance(22)
    await wait_for_status(db, third["_id"], "failed")
    assert await db.job_executions.count_documents({"retryOf": third["_id"]}) == 0
    stored = await db.syncjobs.find_one({"_id": job["_id"]})
    assert (
        stored["consecutiveFailures"] == 3 and stored["failureCount"] == 3 and stored["lastError"] == "boom"
    )


async def test_a_retry_policy_stored_before_a_bound_tightened_still_retries(
    workers, db, clock, runner, add_job
):
    # 30 attempts was allowed once; today's input check stops at 20. The stored job keeps retrying rather
    # than fail its outcome's commit on the check.
    runner.outcomes.append(RunOutcome(ExecutionStatus.FAILED, error="boom", exit_code=1))
    job = await add_job(schedule={"cron": "0 0 1 1 *", "timezone": "UTC"})
    await db.syncjobs.update_one(
        {"_id": job["_id"]}, {"$set": {"retry": {"maxAttempts": 30, "backoffSeconds": 5}}}
    )
    await workers.start()
    first = await start_run(db, clock, job)
    await clock.advance(2)
    await wait_for_status(db, first["_id"], "failed")
    retry = await db.job_executions.find_one({"retryOf": first["_id"]})
    assert retry is not None and retry["attempt"] == 2 and retry["status"] == "queued"


async def test_abandoned_runs_of_a_dead_worker_are_recovered_and_retried(workers, db, clock, add_job):
    job = await add_job(schedule={"cron": "0 0 1 1 *", "timezone": "UTC"})
    stuck = await start_run(db, clock, job)
    await db.job_executions.update_one(
        {"_id": stuck["_id"]},
        {"$set": {"status": "running", "lockTerm": 0, "workerId": "dead:1:x", "startedAt": clock.now()}},
    )
    # Its lock on the job expired: the worker that held it stopped renewing.
    await db.job_execution_locks.insert_one(
        job_lock(job, stuck, "dead:1:x", expires_at=clock.now() - timedelta(seconds=1))
    )
    await workers.start()
    recovered = await wait_for_status(db, stuck["_id"], "abandoned")
    assert "stopped renewing" in recovered["error"]
    retry = await db.job_executions.find_one({"retryOf": stuck["_id"]})
    assert retry is not None and retry["attempt"] == 2
    # The lapsed lock is gone: the dead worker's late renewal cannot revive it.
    lock = await db.job_execution_locks.find_one({"_id": job["_id"]})
    assert lock is None or lock["executionId"] != stuck["_id"]


async def test_a_run_whose_job_lock_is_still_live_is_not_abandoned(workers, db, clock, add_job):
    job = await add_job(schedule={"cron": "0 0 1 1 *", "timezone": "UTC"})
    alive = await start_run(db, clock, job)
    await db.job_executions.update_one(
        {"_id": alive["_id"]},
        {"$set": {"status": "running", "lockTerm": 0, "workerId": "other:1:x"}},
    )
    await db.job_execution_locks.insert_one(
        job_lock(job, alive, "other:1:x", expires_at=clock.now() + timedelta(seconds=60))
    )
    await workers.start()
    await clock.advance(5)
    assert (await db.job_executions.find_one({"_id": alive["_id"]}))["status"] == "running"


async def test_a_crashed_leaders_run_is_abandoned_after_its_lock_lapses(workers, db, clock, runner, add_job):
    runner.hold = True
    job = await add_job(schedule={"cron": "0 0 1 1 *", "timezone": "UTC"}, retry={"maxAttempts": 1})
    leader = await workers.start("w1")
    await workers.start("w2")
    execution = await start_run(db, clock, job)
    await clock.advance(2)
    await wait_for_status(db, execution["_id"], "running")
    await workers.crash(leader)
    await clock.advance(130)
    done = await wait_for_status(db, execution["_id"], "abandoned")
    assert done["workerId"] == leader.worker_id
    assert (await db.syncjobs.find_one({"_id": job["_id"]}))["lastRunStatus"] == "abandoned"


async def test_a_standbys_run_is_abandoned_when_it_dies_and_retried_on_another_worker(
    workers, db, clock, runner, add_job
):
    runner.hold = True
    job = await add_job(schedule={"cron": "0 0 1 1 *", "timezone": "UTC"}, retry={"maxAttempts": 2})
    alive_elsewhere = clock.now() + timedelta(days=1)  # the leader lives elsewhere: w2 never leads here
    await db.worker_locks.insert_one(
        {"_id": "sync-worker", "owner": "elsewhere:1:x", "term": 7, "expiresAt": alive_elsewhere}
    )
    standby = await workers.start("w2")
    execution = await start_run(db, clock, job)
    await clock.advance(2)
    running = await wait_for_status(db, execution["_id"], "running")
    assert running["workerId"] == standby.worker_id and not standby.leading.is_set()
    await workers.crash(standby)
    await db.worker_locks.delete_one({"_id": "sync-worker"})
    runner.hold = False
    leader = await workers.start("w1")
    await clock.advance(130)
    done = await wait_for_status(db, execution["_id"], "abandoned")
    assert done["workerId"] == standby.worker_id
    retry = await db.job_executions.find_one({"retryOf": execution["_id"]})
    retried = await wait_for_status(db, retry["_id"], "succeeded")
    assert retried["workerId"] == leader.worker_id


async def test_at_most_max_concurrent_runs_at_once_the_rest_wait_in_order(
    workers, db, clock, runner, add_job
):
    runner.hold = True
    jobs = [await add_job(name=f"j{i}", schedule={"cron": "0 0 1 1 *", "timezone": "UTC"}) for i in range(6)]
    await workers.start()
    queued = []
    for job in jobs:
        queued.append(await start_run(db, clock, job))
        clock.set(clock.now() + timedelta(milliseconds=10))
    await clock.advance(2)
    await eventually(lambda: runner.active == 4)
    # The four queued first hold the slots; in which order their reads come back is the database's affair.
    assert {r.execution["_id"] for r in runner.requests} == {e["_id"] for e in queued[:4]}
    runner.hold = False
    runner.release.set()
    await eventually(lambda: len(runner.requests) == 6)
    assert runner.peak == 4


async def test_shutdown_waits_for_runs_then_cancels_them_and_the_next_leader_runs_them_again(
    workers, db, clock, runner, add_job
):
    runner.hold = True
    job = await add_job(schedule={"cron": "0 0 1 1 *", "timezone": "UTC"}, retry={"maxAttempts": 1})
    leader = await workers.start("w1")
    execution = await start_run(db, clock, job)
    await clock.advance(2)
    await wait_for_status(db, execution["_id"], "running")
    with capture_logs() as logs:
        await workers.stop(leader)
    done = await db.job_executions.find_one({"_id": execution["_id"]})
    assert done["status"] == "canceled" and done["reason"] == "shutdown"
    assert await db.job_executions.count_documents({"status": "running"}) == 0
    lock = await db.worker_locks.find_one({"_id": "sync-worker"})
    assert lock["expiresAt"] <= clock.now()
    waiting = [entry for entry in logs if entry["event"] == "shutdown_waiting_for_syncs"]
    assert [(entry["count"], entry["execution_ids"]) for entry in waiting] == [(1, [str(execution["_id"])])]
    finished = [entry for entry in logs if entry["event"] == "execution_finished"]
    assert [(entry["status"], entry["reason"]) for entry in finished] == [("canceled", "shutdown")]
    # Not the job's failure: it runs again under the next leader, whatever its retry policy.
    runner.hold = False
    await workers.start("w2")
    retry = await db.job_executions.find_one({"retryOf": execution["_id"]})
    assert retry["attempt"] == 2
    await clock.advance(2)
    await wait_for_status(db, retry["_id"], "succeeded")


async def one_running_one_waiting_for_the_slot(workers, db, clock, runner, add_job) -> tuple:
    """A leader with one run slot: the first run holds it, the second waits for it."""
    workers.settings = workers.settings.model_copy(update={"max_concurrent_runs": 1})
    runner.hold = True
    first_job = await add_job(name="a", schedule={"cron": "0 0 1 1 *", "timezone": "UTC"})
    second_job = await add_job(name="b", schedule={"cron": "0 0 1 1 *", "timezone": "UTC"})
    leader = await workers.start("w1")
    first = await start_run(db, clock, first_job)
    clock.set(clock.now() + timedelta(milliseconds=10))
    second = await start_run(db, clock, second_job)
    await clock.advance(2)
    await wait_for_status(db, first["_id"], "running")
    return leader, first, second


async def test_a_run_waiting_for_a_slot_at_shutdown_stays_queued_and_the_worker_stops_within_its_grace(
    workers, db, clock, runner, add_job
):
    leader, first, second = await one_running_one_waiting_for_the_slot(workers, db, clock, runner, add_job)
    # SIGTERM: the first run is canceled when the grace ends, which frees the slot the second waits for.
    # Started then, it would never be told to stop and would hold the worker past its grace.
    await workers.stop(leader)
    assert (await db.job_executions.find_one({"_id": first["_id"]}))["reason"] == "shutdown"
    assert (await db.job_executions.find_one({"_id": second["_id"]}))["status"] == "queued"
    assert await db.job_executions.count_documents({"status": "running"}) == 0
    assert [r.execution["_id"] for r in runner.requests] == [first["_id"]]


async def test_a_leader_deposed_mid_run_still_records_its_runs_outcome(workers, db, clock, runner, add_job):
    runner.hold = True
    job = await add_job(schedule={"cron": "0 0 1 1 *", "timezone": "UTC"})
    leader = await workers.start("w1")
    execution = await start_run(db, clock, job)
    await clock.advance(2)
    await wait_for_status(db, execution["_id"], "running")
    # Another worker takes the scheduling over (say this one was cut off for a moment): a new term begins.
    # The run holds its job's lock still, and a run is its worker's, not the leader's.
    await depose(db, "other:1:y")
    runner.outcomes.append(RunOutcome(ExecutionStatus.SUCCEEDED, cursors={"customers": "2030-01-01"}))
    runner.hold = False
    runner.release.set()
    done = await wait_for_status(db, execution["_id"], "succeeded")
    assert done["outcomeCommitted"] is True
    stored = await db.syncjobs.find_one({"_id": job["_id"]})
    assert stored["lastRunStatus"] == "succeeded" and stored["cursors"] == {"customers": "2030-01-01"}
    # Its next renewal finds another owner: it steps down from scheduling.
    await clock.advance(11)
    assert not leader.leading.is_set()


async def test_cursors_are_saved_when_the_run_succeeds_under_a_live_term(workers, db, clock, runner, add_job):
    job = await add_job(schedule={"cron": "0 0 1 1 *", "timezone": "UTC"})
    await workers.start()
    runner.outcomes.append(RunOutcome(ExecutionStatus.SUCCEEDED, cursors={"customers": "2030-01-01"}))
    execution = await start_run(db, clock, job)
    await clock.advance(2)
    await wait_for_status(db, execution["_id"], "succeeded")
    stored = await db.syncjobs.find_one({"_id": job["_id"]})
    assert stored["cursors"] == {"customers": "2030-01-01"}


async def test_a_worker_that_stops_leading_goes_on_claiming_queued_runs(workers, db, clock, runner, add_job):
    leader, first, second = await one_running_one_waiting_for_the_slot(workers, db, clock, runner, add_job)
    await depose(db, "other:1:y")
    await clock.advance(11)
    assert not leader.leading.is_set()
    runner.hold = False
    runner.release.set()
    await wait_for_status(db, first["_id"], "succeeded")
    await clock.advance(3)
    done = await wait_for_status(db, second["_id"], "succeeded")
    assert done["workerId"] == leader.worker_id


async def test_a_run_left_running_by_this_very_leader_is_recovered_within_a_resync_interval(
    workers, db, clock, add_job
):
    job = await add_job(schedule={"cron": "0 0 1 1 *", "timezone": "UTC"}, retry={"maxAttempts": 1})
    await workers.start()
    stuck = await start_run(db, clock, job)
    # As if its end could not be recorded: running, under the current term, with no lock and no task.
    await db.job_executions.update_one({"_id": stuck["_id"]}, {"$set": {"status": "running"}})
    await clock.advance(61)
    assert (await db.job_executions.find_one({"_id": stuck["_id"]}))["status"] == "abandoned"


async def test_the_final_log_tail_replaces_what_progress_flushed(workers, db, clock, add_job):
    class ChattyRunner:
        async def run(self, request):
            await request.progress({"entities": {}}, ["[stdout] first"])
            flushed = await db.job_executions.find_one({"_id": request.execution["_id"]})
            assert flushed["logTail"] == ["[stdout] first"] and flushed["status"] == "running"
            return RunOutcome(ExecutionStatus.SUCCEEDED, log_tail=["[stdout] first", "[stdout] second"])

    job = await add_job(schedule={"cron": "0 0 1 1 *", "timezone": "UTC"})
    await workers.start(runner=ChattyRunner())
    execution = await start_run(db, clock, job)
    await clock.advance(2)
    done = await wait_for_status(db, execution["_id"], "succeeded")
    assert done["logTail"] == ["[stdout] first", "[stdout] second"]


async def test_the_leader_commits_the_outcome_of_a_run_whose_worker_died_before_committing_it(
    workers, db, clock, add_job
):
    job = await add_job(
        schedule={"cron": "0 0 1 1 *", "timezone": "UTC"}, retry={"maxAttempts": 2, "backoffSeconds": 3600}
    )
    ended = await start_run(db, clock, job)
    # Its worker recorded the end, then died before the job's status and the retry were written.
    await db.job_executions.update_one(
        {"_id": ended["_id"]},
        {
            "$set": {
                "status": "failed",
                "startedAt": clock.now(),
                "finishedAt": clock.now(),
                "workerId": "dead:1:x",
                "error": "boom",
                "outcomeCommitted": False,
            }
        },
    )
    await workers.start("w1")
    await clock.advance(2)
    stored = await db.syncjobs.find_one({"_id": job["_id"]})
    assert stored["lastRunStatus"] == "failed" and stored["lastError"] == "boom" and stored["runCount"] == 1
    assert stored["cursors"] == {}
    assert (await db.job_executions.find_one({"_id": ended["_id"]}))["outcomeCommitted"] is True
    retry = await db.job_executions.find_one({"retryOf": ended["_id"]})
    assert retry is not None and retry["attempt"] == 2


async def test_failed_runs_are_logged_as_warnings_and_abandoned_ones_as_errors(
    workers, db, clock, runner, add_job
):
    runner.outcomes.append(RunOutcome(ExecutionStatus.FAILED, error="boom", exit_code=1))
    failing = await add_job(
        name="failing", schedule={"cron": "0 0 1 1 *", "timezone": "UTC"}, retry={"maxAttempts": 1}
    )
    dead = await add_job(name="dead", schedule={"cron": "0 0 1 1 *", "timezone": "UTC"})
    stuck = await start_run(db, clock, dead)
    await db.job_executions.update_one(
        {"_id": stuck["_id"]},
        {"$set": {"status": "running", "workerId": "dead:1:x", "lockTerm": 0}},  # and no job lock
    )
    with capture_logs() as logs:
        await workers.start()
        execution = await start_run(db, clock, failing)
        await clock.advance(2)
        await wait_for_status(db, execution["_id"], "failed")
    levels = {entry["status"]: entry["log_level"] for entry in logs if entry["event"] == "execution_finished"}
    assert levels["failed"] == "warning" and levels["abandoned"] == "error"


async def test_a_worker_paused_between_its_claim_and_the_start_does_not_start_the_source(
    workers, db, clock, add_job
):
    class PausedBeforeTheStart:
        """SIGSTOP lands after the claim, before the source starts, and lasts past the lock's 60 s TTL."""

        asked: list = []

        async def run(self, request):
            clock.set(clock.now() + timedelta(seconds=61))
            reason = request.may_start()
            self.asked.append(reason)
            if reason:
                return RunOutcome(ExecutionStatus.ABANDONED, error=reason)
            return RunOutcome(ExecutionStatus.SUCCEEDED)

    runner = PausedBeforeTheStart()
    job = await add_job(schedule={"cron": "0 0 1 1 *", "timezone": "UTC"}, retry={"maxAttempts": 2})
    await workers.start(runner=runner)
    execution = await start_run(db, clock, job)
    await clock.advance(2)
    done = await wait_for_status(db, execution["_id"], "abandoned")
    assert "lock lapsed" in done["error"] and runner.asked and runner.asked[0]
    # Retried like any abandoned run, once the job lock is free again.
    assert await db.job_executions.find_one({"retryOf": execution["_id"]}) is not None


async def test_a_run_whose_lock_is_held_may_start(workers, db, clock, runner, add_job):
    asked = []

    class Asking:
        async def run(self, request):
            asked.append(request.may_start())
            return RunOutcome(ExecutionStatus.SUCCEEDED)

    job = await add_job(schedule={"cron": "0 0 1 1 *", "timezone": "UTC"})
    await workers.start(runner=Asking())
    execution = await start_run(db, clock, job)
    await clock.advance(2)
    await wait_for_status(db, execution["_id"], "succeeded")
    assert asked == [None]


async def test_the_runner_is_told_how_long_ago_the_job_lock_was_taken_or_renewed(workers, db, clock, add_job):
    """What the source's first lease is shortened by (executor/runner.py): the time since the claim, then
    since the last renewal (every third of the lock's 60 s TTL)."""
    ages = []

    class Slow:
        async def run(self, request):
            ages.append(request.lock_age())
            await clock.advance(7)  # say, a destination slow to connect
            ages.append(request.lock_age())
            await clock.advance(20)  # the lock is renewed meanwhile, 20 s after the claim
            ages.append(request.lock_age())
            return RunOutcome(ExecutionStatus.SUCCEEDED)

    job = await add_job(schedule={"cron": "0 0 1 1 *", "timezone": "UTC"})
    await workers.start(runner=Slow())
    execution = await start_run(db, clock, job)
    await clock.advance(2)
    await wait_for_status(db, execution["_id"], "succeeded")
    assert ages[0] < 1 and 7 <= ages[1] < 8 and ages[2] < 8, ages
