"""What a run costs in database commands, counted at the collection calls the worker makes.

The in-memory database has no wire protocol, so pymongo's CommandListener sees nothing here: a thin
wrapper counts every collection call instead, which on a server is one command each (a `find` that
returns one batch is one command; these reads do)."""

import asyncio
from collections import Counter
from datetime import UTC, datetime

from executor.outcome import RunOutcome, RunRequest
from models.execution import ExecutionStatus
from models.execution_store import ExecutionStore
from tests.worker.conftest import Workers, wait_for_status

CALLS = {
    "find",
    "find_one",
    "insert_one",
    "insert_many",
    "update_one",
    "update_many",
    "find_one_and_update",
    "delete_one",
    "delete_many",
    "count_documents",
    "aggregate",
}


class Counted:
    """A database whose collections count the calls made on them."""

    def __init__(self, db):
        self._db = db
        self.calls: Counter = Counter()

    def __getitem__(self, name):
        return CountedCollection(self._db[name], name, self.calls)

    def __getattr__(self, name):
        return getattr(self._db, name)


class CountedCollection:
    def __init__(self, collection, name, calls):
        self._collection, self._name, self._calls = collection, name, calls

    def __getattr__(self, attr):
        value = getattr(self._collection, attr)
        if attr in CALLS:

            def counted(*args, **kwargs):
                self._calls[(self._name, attr)] += 1
                return value(*args, **kwargs)

            return counted
        return value


class ProcessRunner:
    """Reports a pid and ends within its first second, as the subprocess runner does for a short run (its
    progress reports come once a second)."""

    release = asyncio.Event()  # what the Workers fixture sets on close

    async def run(self, request: RunRequest) -> RunOutcome:
        await request.started(4242)
        return RunOutcome(ExecutionStatus.SUCCEEDED, pid=4242, exit_code=0, log_tail=["[stdout] one line"])


async def commands_of(counted: Counted, clock, seconds: float, action=None) -> Counter:
    """The commands of `seconds` of the worker's life (after `action`, when given)."""
    counted.calls.clear()
    if action is not None:
        await action()
    await clock.advance(seconds)
    return Counter(counted.calls)


def cost(calls: Counter, idle: Counter) -> int:
    """Commands beyond what the same stretch of idle time costs (the feed's and the dispatcher's polls).
    The leader's lease renewals come on their own timer, run or no run: not a run's cost either."""
    return sum(count for (collection, _), count in (calls - idle).items() if collection != "worker_locks")


# The job lock is a document of its own (job_execution_locks, as operators read it), so a run costs two
# commands more than when the running execution itself was the lock: taking the lock (one upsert) and letting
# it go (one delete) after the outcome is recorded. Renewals come every third of the lock's TTL, only for runs
# longer than that.
RUN_COMMANDS = 8


async def test_a_scheduled_run_costs_at_most_eight_commands_and_the_pause_gate_read(
    db, clock, worker_settings, add_job
):
    clock.set(datetime(2030, 1, 7, 12, 0, 30, tzinfo=UTC))
    job = await add_job()
    counted = Counted(db)
    group = Workers(counted, clock, worker_settings, ProcessRunner())
    try:
        await group.start()
        await clock.advance(26)  # the load, the fence, recovery: the term's start, not a run
        idle = await commands_of(counted, clock, 2)  # 12:00:56 - 12:00:58
        calls = await commands_of(counted, clock, 2)  # 12:00:58 - 12:01:00: the slot fires and runs
        run = await db.job_executions.find_one({"jobId": job["_id"]})
        await wait_for_status(db, run["_id"], "succeeded")
        # Eight of its own, and the pause gate's read, which every launch of the same second shares.
        assert cost(calls, idle) <= RUN_COMMANDS + 1, (calls, idle)
        assert (
            calls[("job_execution_locks", "update_one")] == calls[("job_execution_locks", "delete_one")] == 1
        )
        stored = await db.syncjobs.find_one({"_id": job["_id"]})
        assert stored["lastRunStatus"] == "succeeded" and stored["nextRunAt"].minute == 2
        done = await db.job_executions.find_one({"_id": run["_id"]})
        assert done["pid"] == 4242 and done["logTail"] == ["[stdout] one line"] and done["outcomeCommitted"]
    finally:
        await group.close()


async def test_a_manual_run_costs_at_most_eight_commands_from_its_queueing_to_the_jobs_status(
    db, clock, worker_settings, add_job
):
    job = await add_job(schedule={"cron": "0 0 1 1 *", "timezone": "UTC"})
    counted = Counted(db)
    group = Workers(counted, clock, worker_settings, ProcessRunner())
    try:
        await group.start()
        await clock.advance(2)
        idle = await commands_of(counted, clock, 2)
        queued = []

        async def request_a_run():
            store = ExecutionStore(counted, retention_days=30)
            queued.append(await store.queue_manual_run(job, clock.now()))

        calls = await commands_of(counted, clock, 2, request_a_run)  # picked up at the next poll
        await wait_for_status(db, queued[0]["_id"], "succeeded")
        # The API's read of the job's active runs is the request's cost (it answers 409 from it), and the
        # dispatcher's poll is in the idle cost already; the rest is the run's.
        assert cost(calls, idle) <= RUN_COMMANDS + 1, (calls, idle)
        assert (await db.syncjobs.find_one({"_id": job["_id"]}))["lastRunStatus"] == "succeeded"
    finally:
        await group.close()
