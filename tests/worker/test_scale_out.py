"""Scale-out: every worker claims queued runs up to its capacity, whichever leads. Many claimers, one run:
no execution is claimed twice, no job runs twice at once, a workspace's cap holds across the fleet, and a
run that requires a label goes only to a worker offering it."""

import asyncio
from collections import Counter
from datetime import timedelta

from executor.outcome import RunOutcome
from models.execution import ExecutionStatus, Trigger, new_execution_document
from models.execution_store import ExecutionStore
from tests.fakes import settle
from tests.worker.conftest import FakeRunner, wait_for_status

YEARLY = {"cron": "0 0 1 1 *", "timezone": "UTC"}


class WatchingRunner(FakeRunner):
    """A shared runner that watches what runs at once: per job (never two) and per workspace."""

    def __init__(self, pause: float = 0.01):
        super().__init__()
        self.pause = pause
        self.by_job: Counter = Counter()
        self.by_workspace: Counter = Counter()
        self.job_overlaps = 0
        self.workspace_peak: Counter = Counter()

    async def run(self, request):
        execution = request.execution
        job, workspace = execution["jobId"], execution["workspaceId"]
        self.by_job[job] += 1
        self.by_workspace[workspace] += 1
        self.job_overlaps += self.by_job[job] > 1
        self.workspace_peak[workspace] = max(self.workspace_peak[workspace], self.by_workspace[workspace])
        try:
            await asyncio.sleep(self.pause)  # real time: the claims of three workers interleave meanwhile
            return await super().run(request)
        finally:
            self.by_job[job] -= 1
            self.by_workspace[workspace] -= 1


async def queue_runs(db, clock, job: dict, count: int) -> list[dict]:
    """`count` queued runs of one job, a millisecond apart (as retries of a `queue`-policy job pile up: one
    manual run at most waits per job)."""
    runs = []
    for _ in range(count):
        clock.set(clock.now() + timedelta(milliseconds=1))
        runs.append(
            new_execution_document(job=job, trigger=Trigger.RETRY, scheduled_for=clock.now(), now=clock.now())
        )
    assert await ExecutionStore(db, retention_days=30).queue(runs) == runs
    return runs


async def all_ended(db) -> bool:
    return await db.job_executions.count_documents({"status": {"$in": ["queued", "running"]}}) == 0


async def until_all_ended(db, clock, polls: int = 60) -> None:
    """Runs ending wake the dispatchers; the poll (every 2 s of the fake clock) is the floor, as in
    production, for a claim lost to another worker at the moment the loser's last look saw nothing more."""
    for _ in range(polls):
        await settle()
        if await all_ended(db):
            return
        await clock.advance(2, step=2)
    assert await all_ended(db)


async def test_three_workers_racing_claim_each_run_once_and_never_run_a_job_twice_at_once(
    workers, db, clock, add_job
):
    runner = WatchingRunner()
    workers.settings = workers.settings.model_copy(update={"max_concurrent_runs": 2})
    fleet = [await workers.start(name, runner=runner) for name in ("w1", "w2", "w3")]
    queued = []
    for n in range(8):
        job = await add_job(name=f"j{n}", schedule=YEARLY, overlapPolicy="queue")
        queued += await queue_runs(db, clock, job, 3)
    for worker in fleet:  # all three look at once: their claims race for the same runs
        worker.dispatcher.wake.set()
    await until_all_ended(db, clock)
    claimed = [request.execution["_id"] for request in runner.requests]
    assert sorted(claimed) == sorted(run["_id"] for run in queued)  # each run once, none lost
    assert runner.job_overlaps == 0
    done = await db.job_executions.find({}).to_list(None)
    assert {doc["status"] for doc in done} == {"succeeded"}
    by_worker = Counter(doc["workerId"] for doc in done)
    assert len(by_worker) == 3, by_worker  # the work spread over the fleet, not only the leader
    assert runner.peak <= 6  # three workers of two slots each
    assert await db.job_execution_locks.count_documents({}) == 0


async def test_a_workspaces_cap_holds_across_the_whole_fleet(workers, db, clock, add_job):
    runner = WatchingRunner(pause=0.02)
    workers.settings = workers.settings.model_copy(
        update={"max_concurrent_runs": 4, "max_runs_per_workspace": 2}
    )
    fleet = [await workers.start(name, runner=runner) for name in ("w1", "w2", "w3")]
    for n in range(10):
        await queue_runs(db, clock, await add_job(name=f"crowd{n}", schedule=YEARLY), 1)
    lone = await add_job(name="lone", schedule=YEARLY, workspaceId="ws-b")
    await queue_runs(db, clock, lone, 1)
    for worker in fleet:
        worker.dispatcher.wake.set()
    await until_all_ended(db, clock)  # the cap makes most of them wait
    assert runner.workspace_peak["ws-a"] <= 2, runner.workspace_peak
    assert runner.workspace_peak["ws-b"] == 1
    assert len(runner.requests) == 11


async def test_a_run_that_requires_a_label_goes_only_to_a_worker_offering_it(workers, db, clock, add_job):
    runner = FakeRunner()
    plain = await workers.start("plain", runner=runner)
    job = await add_job(schedule=YEARLY, requiredLabel="gpu")
    (run,) = await queue_runs(db, clock, job, 1)
    plain.dispatcher.wake.set()
    await clock.advance(5)
    assert (await db.job_executions.find_one({"_id": run["_id"]}))["status"] == "queued"
    assert runner.requests == []
    gpu_settings = workers.settings.model_copy(update={"worker_labels": "gpu,eu"})
    labelled = await workers.start("gpu", runner=runner, settings=gpu_settings)
    await clock.advance(3)
    done = await wait_for_status(db, run["_id"], "succeeded")
    assert done["workerId"] == labelled.worker_id and done["requiredLabel"] == "gpu"


async def test_a_scheduled_slot_carries_its_jobs_label(workers, db, clock, add_job):
    job = await add_job(requiredLabel="gpu")  # every minute
    await workers.start("plain")
    await clock.advance(61)
    slot = await db.job_executions.find_one({"jobId": job["_id"]})
    assert slot["trigger"] == "schedule" and slot["requiredLabel"] == "gpu" and slot["status"] == "queued"


async def test_a_draining_worker_leaves_queued_runs_to_the_others(workers, db, clock, add_job):
    runner = FakeRunner()
    runner.hold = True
    workers.settings = workers.settings.model_copy(update={"max_concurrent_runs": 1})
    first = await workers.start("w1", runner=runner)
    (held,) = await queue_runs(db, clock, await add_job(name="held", schedule=YEARLY), 1)
    first.dispatcher.wake.set()
    await wait_for_status(db, held["_id"], "running")
    (waiting,) = await queue_runs(db, clock, await add_job(name="waiting", schedule=YEARLY), 1)
    for started, stop, _ in workers.started:
        if started is first:
            stop.set()  # SIGTERM: it claims nothing more and finishes what it holds
    second = await workers.start("w2", runner=FakeRunner())
    second.dispatcher.wake.set()
    done = await wait_for_status(db, waiting["_id"], "succeeded")
    assert done["workerId"] == second.worker_id
    runner.outcomes.append(RunOutcome(ExecutionStatus.SUCCEEDED))
    runner.hold = False
    runner.release.set()
    finished = await wait_for_status(db, held["_id"], "succeeded")
    assert finished["workerId"] == first.worker_id
