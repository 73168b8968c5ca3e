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


# From queued to the job's status a run costs: taking the job lock (one upsert), the claim, the job's status
# write, the execution's end and the lock's release; then its share of the read of the jobs its dispatch
# pass claimed (one `find` for them all). No read of the pauses: whatever queues a run reads them after its
# write, and a pause ends what it finds queued (models.execution_store). The dispatcher's read that found
# it is a poll the idle worker makes anyway. Renewals come every third of the lock's TTL, only for runs
# longer than that. The queueing itself (the fire's chunked insert and `nextRunAt` write, or the API's read
# and insert, each followed by the pauses' read) is not counted here.
RUN_COMMANDS = 6


def queueing(calls: Counter) -> int:
    """The commands that queued the run: the fire's insert and `nextRunAt` write, or the API's read of the
    job's active runs and its insert; then the read of the pauses that follows either write."""
    keys = [
        ("job_executions", "insert_many"),
        ("syncjobs", "update_many"),
        ("job_executions", "find"),
        ("job_executions", "insert_one"),
        ("scheduler_control", "find"),
    ]
    return sum(calls[key] for key in keys)


async def test_a_scheduled_run_costs_at_most_six_commands_from_queued_to_the_jobs_status(
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
        # One insert per chunk of due slots, the pauses read after it, one write per next fire time.
        assert queueing(calls - idle) == 3
        assert cost(calls, idle) - queueing(calls - idle) <= RUN_COMMANDS, (calls, idle)
        assert (
            calls[("job_execution_locks", "update_one")] == calls[("job_execution_locks", "delete_one")] == 1
        )
        stored = await db.syncjobs.find_one({"_id": job["_id"]})
        assert stored["lastRunStatus"] == "succeeded" and stored["nextRunAt"].minute == 2
        done = await db.job_executions.find_one({"_id": run["_id"]})
        assert done["pid"] == 4242 and done["logTail"] == ["[stdout] one line"] and done["outcomeCommitted"]
    finally:
        await group.close()


async def test_a_manual_run_costs_at_most_six_commands_from_queued_to_the_jobs_status(
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
        # The API's read of the job's active runs and its insert are the request's cost (it answers 409 from
        # the read) and its read of the pauses after the insert, and the dispatcher's poll is in the idle
        # cost already; the rest is the run's.
        assert queueing(calls - idle) == 3
        assert cost(calls, idle) - queueing(calls - idle) <= RUN_COMMANDS, (calls, idle)
        assert (await db.syncjobs.find_one({"_id": job["_id"]}))["lastRunStatus"] == "succeeded"
    finally:
        await group.close()


async def test_a_change_of_leader_writes_only_the_jobs_whose_stored_schedule_it_disagrees_with(
    db, clock, worker_settings, add_job
):
    """Fencing is per job and lazy (worker/job_status.py): a new term costs no write to every job."""
    clock.set(datetime(2030, 1, 7, 12, 0, 30, tzinfo=UTC))
    yearly = {"cron": "0 0 1 1 *", "timezone": "UTC"}
    jobs = [await add_job(name=f"job{n}", schedule=yearly) for n in range(20)]
    counted = Counted(db)
    group = Workers(counted, clock, worker_settings, ProcessRunner())
    try:
        first = await group.start("w1")
        await clock.advance(2)
        assert await db.syncjobs.count_documents({"fenceTerm": 1, "scheduleAppliedVersion": 1}) == 20
        await group.stop(first)
        # Meanwhile one job changes: the next leader has that one to write, and only that one.
        edited = jobs[0]["_id"]
        await db.syncjobs.update_one(
            {"_id": edited}, {"$set": {"schedule.cron": "0 0 2 1 *"}, "$inc": {"version": 1}}
        )
        counted.calls.clear()
        await group.start("w2")
        await clock.advance(2)
        assert counted.calls[("syncjobs", "update_many")] == 1, counted.calls
        assert [doc["_id"] for doc in await db.syncjobs.find({"fenceTerm": 2}).to_list(None)] == [edited]
    finally:
        await group.close()
