"""The world the chaos suite runs workers in: one in-memory database and one FakeClock shared by several
workers, each seen through views that faults can be injected into (its database handle, its clock, its
runner), plus the instruments that watch it (a ledger of the runs the sources really made, an event-loop
watchdog, a spin detector).

A worker is faulted only from the outside, through what it is handed, as a real process would be:
- crashed: every database call and every clock sleep of it hangs for ever, and its sources are dead;
- paused (SIGSTOP): its database calls and sleeps wait until it resumes, while its sources run on;
- renewals failing: its updates of `worker_locks` raise AutoReconnect;
- its clock off by a fraction of the skew margin.
"""

import asyncio
import contextlib
import gc
import signal
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import mongomock
import mongomock.collection
import mongomock.filtering
from bson import ObjectId
from pymongo.errors import AutoReconnect
from pymongo.results import DeleteResult, InsertManyResult, InsertOneResult, UpdateResult

from executor.outcome import RunOutcome, RunRequest
from models.collections import WORKER_LOCKS
from models.execution import ExecutionStatus
from tests.fakes import FakeClock

GATED = {
    "find_one",
    "find_one_and_update",
    "update_one",
    "update_many",
    "insert_one",
    "insert_many",
    "delete_one",
    "delete_many",
    "count_documents",
}


class LoopFrozen(Exception):
    """Raised by the watchdog's alarm inside whatever code has held the event loop for too long."""


class Faults:
    """What is wrong with one worker right now, and what is about to go wrong: a fault armed to strike at
    the worker's n-th next database call lands in the middle of whatever it is doing."""

    def __init__(self) -> None:
        self.dead = False
        self.closed = False  # the example is over: whatever still waits here is cancelled for good
        self.awake = asyncio.Event()
        self.awake.set()
        self.renewals_fail = False
        self.offset = timedelta(0)
        self._countdown: int | None = None
        self._strike: Callable[[], None] | None = None
        self._at: str | None = None

    @property
    def healthy(self) -> bool:
        return not self.dead and self.awake.is_set() and not self.renewals_fail

    @property
    def armed(self) -> bool:
        return self._countdown is not None

    def arm(self, calls: int, strike: Callable[[], None], *, at: str | None = None) -> None:
        """Strike at the `calls`-th next database call (0: now), counting only calls named `at`
        ("collection.method") when given: a process killed between two particular writes."""
        if calls <= 0:
            strike()
        else:
            self._countdown, self._strike, self._at = calls, strike, at

    def disarm(self) -> None:
        self._countdown = self._strike = self._at = None

    async def gate(self, call: str = "") -> None:
        """Where a crashed worker stops for good and a paused one waits."""
        if self._countdown is not None and self._at in (None, call):
            self._countdown -= 1
            if self._countdown <= 0:
                strike = self._strike
                self.disarm()
                strike()
        while True:
            if self.closed:
                raise asyncio.CancelledError
            if self.dead:
                await asyncio.get_running_loop().create_future()  # never resolved: the process is gone
            if self.awake.is_set():
                return
            await self.awake.wait()


class Meter:
    """Counts database calls and the CPU time spent inside them (the in-memory database runs on the loop,
    where a real one would not: that time is not the worker's), and the time the garbage collector takes
    (its garbage is mostly the in-memory database's)."""

    def __init__(self) -> None:
        self.calls = 0
        self.seconds = 0.0
        self.inside = 0
        # Calls since the last one that changed something: a worker that keeps calling without changing
        # anything, while the clock stands still, is spinning.
        self.fruitless = 0
        self._collecting_since = 0.0

    def on_gc(self, phase: str, info) -> None:
        if phase == "start":
            self._collecting_since = time.thread_time()
        else:
            self.seconds += time.thread_time() - self._collecting_since

    async def timed(self, awaitable):
        started = time.thread_time()
        self.inside += 1
        changed = False
        try:
            result = await awaitable
            changed = changed_anything(result)
            return result
        finally:
            self.inside -= 1
            self.seconds += time.thread_time() - started
            self.calls += 1
            self.fruitless = 0 if changed else self.fruitless + 1


def changed_anything(result) -> bool:
    """Whether a call's result says it wrote something (a read, a miss or an error did not)."""
    if isinstance(result, (InsertOneResult, InsertManyResult)):
        return True
    if isinstance(result, UpdateResult):
        return bool(result.modified_count or result.upserted_id is not None)
    if isinstance(result, DeleteResult):
        return bool(result.deleted_count)
    return False


class GatedCursor:
    def __init__(self, cursor, collection: "GatedCollection"):
        self._cursor = cursor
        self._collection = collection

    def sort(self, *args, **kwargs) -> "GatedCursor":
        self._cursor = self._cursor.sort(*args, **kwargs)
        return self

    def limit(self, *args) -> "GatedCursor":
        self._cursor = self._cursor.limit(*args)
        return self

    def skip(self, *args) -> "GatedCursor":
        self._cursor = self._cursor.skip(*args)
        return self

    async def to_list(self, length=None):
        await self._collection.faults.gate(f"{self._collection.name}.find")
        return await self._collection.meter.timed(self._cursor.to_list(length))


class GatedCollection:
    def __init__(self, collection, faults: Faults, meter: Meter):
        self._collection = collection
        self.name = collection.name
        self.faults = faults
        self.meter = meter

    def find(self, *args, **kwargs) -> GatedCursor:
        return GatedCursor(self._collection.find(*args, **kwargs), self)

    def __getattr__(self, name: str):
        target = getattr(self._collection, name)
        if name not in GATED:
            return target

        async def call(*args, **kwargs):
            await self.faults.gate(f"{self._collection.name}.{name}")
            if self.faults.renewals_fail and self._collection.name == WORKER_LOCKS and name == "update_one":
                raise AutoReconnect("chaos: the lease renewal did not reach the server")
            return await self.meter.timed(target(*args, **kwargs))

        return call


class GatedDatabase:
    """One worker's handle on the shared database."""

    def __init__(self, db, faults: Faults, meter: Meter):
        self._db = db
        self._faults = faults
        self._meter = meter

    def __getitem__(self, name: str) -> GatedCollection:
        return GatedCollection(self._db[name], self._faults, self._meter)

    def __getattr__(self, name: str):
        if name in ("client", "name"):
            return getattr(self._db, name)
        return self[name]


class WorkerClock:
    """One worker's view of the shared clock: off by its offset, and asleep while it is paused."""

    def __init__(self, shared: FakeClock, faults: Faults):
        self._shared = shared
        self._faults = faults

    def now(self) -> datetime:
        return self._shared.now() + self._faults.offset

    async def sleep(self, seconds: float) -> None:
        await self._shared.sleep(seconds)
        await self._faults.gate()


@dataclass
class Run:
    worker: str
    execution_id: ObjectId
    job_id: ObjectId
    slot: datetime
    attempt: int
    started: datetime
    ended: datetime | None = None


@dataclass
class Behaviour:
    """How a job's sync goes: `ok`, `fail`, `hang` (until canceled or timed out) or `slow` (for `seconds`)."""

    kind: str = "ok"
    seconds: float = 0.0


class Ledger:
    """Every run the sources really made, whoever started it: what the database cannot be trusted to say."""

    def __init__(self, clock: FakeClock):
        self._clock = clock
        self.runs: list[Run] = []
        self.active: dict[ObjectId, list[Run]] = {}
        self.violations: dict[str, list[str]] = {}

    def violation(self, invariant: str, message: str) -> None:
        self.violations.setdefault(invariant, []).append(message)

    def start(self, worker: str, request: RunRequest) -> Run:
        execution = request.execution
        run = Run(
            worker,
            execution["_id"],
            execution["jobId"],
            execution["scheduledFor"],
            execution["attempt"],
            self._clock.now(),
        )
        key = (run.job_id, run.slot, run.attempt)
        twice = [other for other in self.runs if (other.job_id, other.slot, other.attempt) == key]
        if twice:
            self.violation(
                "no_slot_runs_twice",
                f"job {run.job_id} slot {run.slot:%H:%M:%S} attempt {run.attempt} ran on {twice[0].worker} "
                f"at {twice[0].started:%H:%M:%S} and again on {worker} at {run.started:%H:%M:%S}",
            )
        going = self.active.setdefault(run.job_id, [])
        if going:
            self.violation(
                "no_two_runs_of_a_job_overlap",
                f"job {run.job_id}: {worker} started slot {run.slot:%H:%M:%S} at {run.started:%H:%M:%S} "
                f"while {going[0].worker}'s run of slot {going[0].slot:%H:%M:%S} was going",
            )
        going.append(run)
        self.runs.append(run)
        return run

    def end(self, run: Run) -> None:
        if run.ended is None:
            run.ended = self._clock.now()
            self.active[run.job_id].remove(run)

    def kill_runs_of(self, worker: str) -> None:
        """A crashed worker's sources die with it (their supervisors get SIGTERM when it dies)."""
        for runs in self.active.values():
            for run in [run for run in runs if run.worker == worker]:
                self.end(run)


def overlapping_records(executions: list[dict], *, clock_spread: timedelta) -> list[str]:
    """Pairs of one job's recorded runs that were running at once: each started before the other ended.

    Each `startedAt` and `finishedAt` is the true time as read by the clock of the worker that wrote it, and
    the workers' clocks differ by up to `clock_spread` (the largest offset there ever was less the smallest;
    zero when no clock jumped). When a run ends and the job's lock passes at once to a worker whose clock is
    behind, the next run's recorded start comes before the recorded end although it followed it: at 12:15:00
    host:0 (on time) recorded a run timed out and released the lock, then host:2 (0.1 s behind) took the lock
    and recorded its start as 12:14:59.9 (CHAOS_SEED=21, example 9). So "started before the other ended" is
    read as "by more than the clocks can differ", and then it is certain. The sources' runs themselves are
    checked in true time and in the order they happened by the `Ledger`, which misses no overlap however
    short."""
    messages = []
    by_job: dict[ObjectId, list[dict]] = {}
    for doc in executions:
        if doc.get("startedAt") is not None:
            by_job.setdefault(doc["jobId"], []).append(doc)
    for job_id, docs in by_job.items():
        docs.sort(key=lambda doc: doc["startedAt"])
        for index, before in enumerate(docs):
            for after in docs[index + 1 :]:
                if not after["startedAt"] + clock_spread < end_of(before):
                    break  # nor does any later one, starting later still
                if before["startedAt"] + clock_spread < end_of(after):
                    messages.append(
                        f"job {job_id}: {describe_run(before)} overlaps {describe_run(after)} by more than "
                        f"the clocks' spread of {clock_spread.total_seconds():g} s"
                    )
    return messages


def end_of(execution: dict) -> datetime:
    """When a run ended, or never for one still recorded as running."""
    return execution.get("finishedAt") or datetime.max.replace(tzinfo=execution["startedAt"].tzinfo)


def describe_run(execution: dict) -> str:
    ended = execution.get("finishedAt")
    return (
        f"{execution['_id']} ({execution['status']} on {execution.get('workerId')}, "
        f"{execution['startedAt']:%H:%M:%S.%f}-{f'{ended:%H:%M:%S.%f}' if ended else 'still running'})"
    )


class ChaosRunner:
    """One worker's runner: each run goes as its job's behaviour says, on the shared clock (a source is a
    process of its own: it runs on while its worker is paused)."""

    def __init__(
        self,
        worker: str,
        faults: Faults,
        clock: FakeClock,
        ledger: Ledger,
        behaviours: dict[ObjectId, Behaviour],
    ):
        self._worker = worker
        self._faults = faults
        self._clock = clock
        self._ledger = ledger
        self._behaviours = behaviours

    async def run(self, request: RunRequest) -> RunOutcome:
        await self._faults.gate()  # a dead worker starts no source
        run = self._ledger.start(self._worker, request)
        try:
            behaviour = self._behaviours.get(run.job_id, Behaviour())
            if behaviour.kind == "fail":
                return RunOutcome(ExecutionStatus.FAILED, error="chaos: the source failed", exit_code=1)
            if behaviour.kind == "ok":
                return RunOutcome(ExecutionStatus.SUCCEEDED, exit_code=0)
            seconds = behaviour.seconds if behaviour.kind == "slow" else request.timeout_seconds
            sleeper = asyncio.ensure_future(self._clock.sleep(min(seconds, request.timeout_seconds)))
            canceled = asyncio.ensure_future(request.cancel.wait())
            try:
                await asyncio.wait({sleeper, canceled}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                canceled.cancel()
            if request.cancel.is_set():
                return RunOutcome(ExecutionStatus.CANCELED, error="canceled", exit_code=-15)
            if behaviour.kind == "hang" or behaviour.seconds >= request.timeout_seconds:
                return RunOutcome(ExecutionStatus.TIMED_OUT, error="timed out", exit_code=-15)
            return RunOutcome(ExecutionStatus.SUCCEEDED, exit_code=0)
        finally:
            self._ledger.end(run)


class Watchdog:
    """Times every callback the event loop runs (a task's step is one): the CPU time this thread spent in it
    (so another process taking the core does not count), less the in-memory database's and the garbage
    collector's. A CPU-time alarm breaks a callback that would hold the loop for good."""

    def __init__(self, meter: Meter, *, freeze_seconds: float = 1.0):
        self.meter = meter
        self.freeze_seconds = freeze_seconds
        self.worst = 0.0
        self.worst_at = ""
        self.label = ""
        self.frozen: list[str] = []
        self.ignored: weakref.WeakSet[asyncio.Task] = weakref.WeakSet()  # the test's own tasks
        self._previous: Any = None
        self._original_run: Any = None

    def new_step(self, label: str) -> None:
        self.label = label

    def install(self) -> None:
        """Until `uninstall`: time every callback, and take SIGVTALRM to break a frozen one."""
        self._previous = signal.signal(signal.SIGVTALRM, self._alarm)
        gc.callbacks.append(self.meter.on_gc)
        original = self._original_run = asyncio.events.Handle._run
        watchdog = self

        def timed_run(handle):
            if getattr(getattr(handle, "_callback", None), "__self__", None) in watchdog.ignored:
                return original(handle)
            started, outside = time.thread_time(), watchdog.meter.seconds
            signal.setitimer(signal.ITIMER_VIRTUAL, watchdog.freeze_seconds)
            try:
                return original(handle)
            finally:
                signal.setitimer(signal.ITIMER_VIRTUAL, 0)
                held = time.thread_time() - started - (watchdog.meter.seconds - outside)
                if held > watchdog.worst:
                    watchdog.worst, watchdog.worst_at = held, f"{watchdog.label}: {describe(handle)}"

        asyncio.events.Handle._run = timed_run

    def uninstall(self) -> None:
        asyncio.events.Handle._run = self._original_run
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)
        signal.signal(signal.SIGVTALRM, self._previous)
        gc.callbacks.remove(self.meter.on_gc)

    def _alarm(self, signum, frame) -> None:
        if self.meter.inside:
            signal.setitimer(signal.ITIMER_VIRTUAL, self.freeze_seconds)  # the in-memory database is slow
            return
        self.frozen.append(self.label)
        raise LoopFrozen(f"a callback held the event loop for {self.freeze_seconds} s during {self.label}")


def describe(handle) -> str:
    """Which task (or function) a loop callback belongs to."""
    callback = getattr(handle, "_callback", None)
    task = getattr(callback, "__self__", None)
    if isinstance(task, asyncio.Task):
        coroutine = task.get_coro()
        return f"task {task.get_name()} ({getattr(coroutine, '__qualname__', coroutine)})"
    return getattr(callback, "__qualname__", repr(callback))


def leading_any(schedulers: list[Any]) -> bool:
    return any(scheduler.leading.is_set() for scheduler in schedulers)


@contextlib.contextmanager
def quicker_unique_checks() -> Iterator[None]:
    """mongomock checks every unique index on every write by running a query over the whole collection, which
    makes a day of executions cost minutes. This check has the same meaning for the indexes of ours (plain
    top-level keys, an optional partial filter) and compares the keys before anything else."""
    original = mongomock.collection.Collection._ensure_uniques

    def ensure_uniques(collection, new_data):
        for index in collection._store.indexes.values():
            if not index.get("unique"):
                continue
            keys = [key for key, _ in index["key"]]
            if any("." in key for key in keys):
                return original(collection, new_data)
            wanted = [new_data.get(key) for key in keys]
            if index.get("sparse") and set(wanted) == {None}:
                continue
            partial = index.get("partialFilterExpression")
            same = [
                doc
                for doc in collection._store.documents
                if all(doc.get(key) == value for key, value in zip(keys, wanted, strict=True))
                and (partial is None or mongomock.filtering.filter_applies(partial, doc))
            ]
            if len(same) > 1:
                raise mongomock.DuplicateKeyError("E11000 Duplicate Key Error", 11000)

    mongomock.collection.Collection._ensure_uniques = ensure_uniques
    try:
        yield
    finally:
        mongomock.collection.Collection._ensure_uniques = original
