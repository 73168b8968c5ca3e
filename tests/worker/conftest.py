import asyncio
from collections import deque
from datetime import datetime

import pytest

from executor.outcome import RunOutcome, RunRequest
from models.execution import ExecutionStatus
from models.settings import Settings
from models.sync_job import SyncJobSpec, new_job_document
from tests.fakes import eventually, settle
from worker.scheduler import Scheduler


class FakeRunner:
    """Stands in for the subprocess runner: records each run, ends it as told, can hold it open."""

    def __init__(self):
        self.requests: list[RunRequest] = []
        self.outcomes: deque[RunOutcome] = deque()
        self.hold = False
        self.release = asyncio.Event()
        self.active = 0
        self.peak = 0

    async def run(self, request: RunRequest) -> RunOutcome:
        self.requests.append(request)
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            if self.hold:
                release = asyncio.ensure_future(self.release.wait())
                cancel = asyncio.ensure_future(request.cancel.wait())
                await asyncio.wait({release, cancel}, return_when=asyncio.FIRST_COMPLETED)
                release.cancel()
                cancel.cancel()
                if request.cancel.is_set():
                    return RunOutcome(ExecutionStatus.CANCELED, error="canceled")
            return self.outcomes.popleft() if self.outcomes else RunOutcome(ExecutionStatus.SUCCEEDED)
        finally:
            self.active -= 1


@pytest.fixture
def worker_settings(settings) -> Settings:
    return settings.model_copy(
        update={
            "worker_lease_seconds": 30,
            "worker_renew_seconds": 10,
            "worker_clock_skew_seconds": 2,
            "job_lock_ttl_seconds": 60,
            "poll_interval_seconds": 2,
            "resync_interval_seconds": 60,
            "shutdown_grace_seconds": 5,
            "max_concurrent_runs": 4,
        }
    )


@pytest.fixture
def runner() -> FakeRunner:
    return FakeRunner()


class Workers:
    """Worker replicas in one process, sharing one database and one fake clock."""

    def __init__(self, db, clock, settings, runner):
        self.db, self.clock, self.settings, self.runner = db, clock, settings, runner
        self.started: list[tuple[Scheduler, asyncio.Event, asyncio.Task]] = []

    async def start(self, name: str = "w1", **kwargs) -> Scheduler:
        scheduler = Scheduler(
            db=self.db,
            runner=kwargs.pop("runner", self.runner),
            clock=self.clock,
            settings=kwargs.pop("settings", self.settings),
            worker_id=f"host:1:{name}",
            **kwargs,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(scheduler.run(stop))
        self.started.append((scheduler, stop, task))
        await settle()
        return scheduler

    def leaders(self) -> list[Scheduler]:
        return [s for s, _, task in self.started if s.leading.is_set() and not task.done()]

    async def stop(self, scheduler: Scheduler) -> None:
        """SIGTERM: the clock runs on while the worker waits out its shutdown grace."""
        for s, stop, task in self.started:
            if s is scheduler:
                stop.set()
                for _ in range(int(self.settings.shutdown_grace_seconds) + 2):
                    if task.done():
                        break
                    await self.clock.advance(1)
                await asyncio.wait_for(task, 5)

    async def crash(self, scheduler: Scheduler) -> None:
        """Kill a worker without any cleanup, as a SIGKILL would."""
        for s, _, task in self.started:
            if s is scheduler:
                task.cancel()
                for execution_task in list(s.launcher._tasks.values()):
                    execution_task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def close(self) -> None:
        for _, stop, _task in self.started:
            stop.set()
        self.runner.release.set()
        await self.clock.advance(self.settings.shutdown_grace_seconds + 1)
        await asyncio.gather(
            *(asyncio.wait_for(task, 5) for _, _, task in self.started), return_exceptions=True
        )


@pytest.fixture
async def workers(db, clock, worker_settings, runner):
    group = Workers(db, clock, worker_settings, runner)
    yield group
    await group.close()


@pytest.fixture
def add_job(db, clock):
    async def add(**overrides) -> dict:
        fields = {
            "name": "job",
            "dataSourceId": "a" * 24,
            "destinationDatabaseId": "b" * 24,
            "schedule": {"cron": "* * * * *", "timezone": "UTC"},
        }
        extra = {
            key: overrides.pop(key)
            for key in list(overrides)
            if key in ("nextRunAt", "version", "workspaceId")
        }
        fields.update(overrides)
        doc = new_job_document(
            extra.pop("workspaceId", "ws-a"), SyncJobSpec.model_validate(fields), clock.now()
        )
        doc.update(extra)
        doc["_id"] = (await db.syncjobs.insert_one(doc)).inserted_id
        return doc

    return add


async def executions_of(db, job_id, **query) -> list[dict]:
    return (
        await db.job_executions.find({"jobId": job_id, **query})
        .sort([("queuedAt", 1), ("_id", 1)])
        .to_list(None)
    )


async def wait_for_status(db, execution_id, status: str, timeout: float = 5.0) -> dict:
    async def check():
        doc = await db.job_executions.find_one({"_id": execution_id})
        return doc if doc and doc["status"] == status else None

    return await eventually(check, timeout=timeout, message=f"execution {execution_id} to be {status}")


def at(clock, moment: datetime) -> None:
    clock.set(moment)


async def depose(db, owner: str = "other:1:y") -> int:
    """Another worker takes the lock under a new term."""
    lock = await db.worker_locks.find_one_and_update(
        {"_id": "sync-worker"}, {"$set": {"owner": owner}, "$inc": {"term": 1}}, return_document=True
    )
    return lock["term"]


async def lose_and_regain(workers: Workers, scheduler: Scheduler) -> None:
    """Cut a leader off from the database until its lease lapses, then let it back in to lead again."""
    from pymongo.errors import AutoReconnect

    renew = scheduler.leader_lock.renew

    async def unreachable(lease):
        raise AutoReconnect("cut off")

    scheduler.leader_lock.renew = unreachable
    for _ in range(30):
        await workers.clock.advance(1)
        if not scheduler.leading.is_set():
            break
    assert not scheduler.leading.is_set()
    scheduler.leader_lock.renew = renew
    await workers.clock.advance(15)
    assert scheduler.leading.is_set()


class Frozen(Exception):
    """The event loop did not come back within the watchdog's limit."""


@pytest.fixture
def freeze_alarm():
    """Turns a frozen event loop into a failing test instead of a hung one: SIGALRM interrupts whatever
    spins. `fired` says whether it had to."""
    import signal

    class Alarm:
        fired = False

        def arm(self, seconds: float) -> None:
            signal.setitimer(signal.ITIMER_REAL, seconds)

    alarm = Alarm()

    def interrupt(signum, frame):
        alarm.fired = True
        raise Frozen("the event loop did not yield")

    previous = signal.signal(signal.SIGALRM, interrupt)
    yield alarm
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)
