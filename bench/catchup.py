"""Catch-up after an outage: 1,000 minutely jobs, the worker down for 24 h, then one worker starts.

    python bench/catchup.py                  # 1,000 jobs, 24 h: up to 3 minutes
    python bench/catchup.py --jobs 300 --hours 0.17

What runs: one in-process `Scheduler` with the default settings (30 s lease) and a runner that does
nothing, on the in-memory database, with a real clock shifted so that the worker starts 5 s before a
minute boundary. The jobs are as the last leader left them 24 h ago: `nextRunAt` 24 h in the past.

Figures (targets from issue 8: first new slot fired <= 1 s late, the loop never blocked > 100 ms, the
missed ranges recorded):
- leading after: from start to the worker holding the lease;
- missed ranges: the `skipped` executions with reason "missed", how many jobs have one, the slots they
  cover, and when the last was written;
- first new slot: the first minute boundary after start, and how late its execution records were written;
- longest loop block: the longest single callback the event loop ran (a task's step), wall clock, and
  which task it was; the in-memory database's own time, which a real server would not spend on our loop,
  counts too. Beside it, the largest lateness of a 5 ms ticker task (several long steps in a row add up).

A worker that freezes (issue 8 item 1) stops the ticker: after `--limit` seconds the figures so far are
printed with "froze", and the process exits.
"""

import argparse
import asyncio
import logging
import os
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import structlog  # noqa: E402

from bench.schedule_scale import NoopRunner, fresh_database  # noqa: E402
from models.collections import JOB_EXECUTIONS  # noqa: E402
from models.settings import Settings  # noqa: E402
from models.sync_job import SyncJobSpec, new_job_document  # noqa: E402
from worker.scheduler import Scheduler  # noqa: E402


class ShiftedClock:
    """The real clock, moved by `shift` seconds, at BSON precision."""

    def __init__(self, shift: float):
        self._shift = timedelta(seconds=shift)

    def now(self) -> datetime:
        moment = datetime.now(UTC) + self._shift
        return moment.replace(microsecond=moment.microsecond // 1000 * 1000)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ObservedDatabase:
    """The database, with the moment each execution insert returns noted (in the worker's time)."""

    def __init__(self, db, clock: ShiftedClock, on_inserted):
        self._db, self._clock, self._on_inserted = db, clock, on_inserted

    def __getattr__(self, name: str):
        return self[name] if name not in ("client", "name") else getattr(self._db, name)

    def __getitem__(self, name: str):
        collection = self._db[name]
        if name != JOB_EXECUTIONS:
            return collection
        return ObservedExecutions(collection, self._clock, self._on_inserted)


class ObservedExecutions:
    def __init__(self, collection, clock, on_inserted):
        self._collection, self._clock, self._on_inserted = collection, clock, on_inserted

    def __getattr__(self, name: str):
        return getattr(self._collection, name)

    async def insert_many(self, docs, **kwargs):
        try:
            return await self._collection.insert_many(docs, **kwargs)
        finally:
            self._on_inserted(docs, self._clock.now())


class Figures:
    def __init__(self):
        self.values: dict[str, str] = {}
        self.last_tick = time.perf_counter()
        self.worst_block = 0.0
        self.worst_step = 0.0
        self.worst_step_of = ""
        self.current: tuple[str, float] | None = None  # the step the loop is in, and since when

    def time_every_step(self) -> None:
        """Time each callback the loop runs (test instrumentation: a bench may patch asyncio)."""
        original = asyncio.events.Handle._run

        def timed_run(handle):
            started = time.perf_counter()
            self.current = (step_name(handle), started)
            try:
                return original(handle)
            finally:
                self.current = None
                took = time.perf_counter() - started
                if took > self.worst_step:
                    self.worst_step, self.worst_step_of = took, step_name(handle)

        asyncio.events.Handle._run = timed_run

    def note(self, name: str, value: str) -> None:
        self.values.setdefault(name, value)

    def print(self, froze: bool) -> None:
        for name, value in self.values.items():
            print(f"{name:28} {value}")
        print(f"{'longest loop block':28} {self.worst_step * 1000:.0f} ms in {self.worst_step_of}")
        froze_note = " (then froze)" if froze else ""
        print(f"{'longest ticker delay':28} {self.worst_block * 1000:.0f} ms{froze_note}")
        if froze:
            current = self.current
            where = f"{current[0]} has run for {time.perf_counter() - current[1]:.1f} s" if current else "?"
            print(f"{'froze':28} the event loop stopped answering: {where}; exiting")
        sys.stdout.flush()


async def seed(db, jobs: int, last_seen: datetime) -> None:
    spec = SyncJobSpec.model_validate(
        {
            "name": "bench",
            "dataSourceId": "a" * 24,
            "destinationDatabaseId": "b" * 24,
            "schedule": {"cron": "* * * * *"},
        }
    )
    docs = []
    for _ in range(jobs):
        doc = new_job_document("ws", spec, last_seen - timedelta(hours=1))
        doc.update(nextRunAt=last_seen, scheduleAppliedVersion=1, scheduleAppliedAt=last_seen)
        docs.append(doc)
    await db.syncjobs.insert_many(docs)


async def measure(jobs: int, hours: float, limit: float, figures: Figures) -> None:
    first_new_slot = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=2)
    start = first_new_slot - timedelta(seconds=5)
    raw = await fresh_database()
    await seed(raw, jobs, last_seen=(start - timedelta(hours=hours)).replace(second=0, microsecond=0))
    # The worker's time: it starts 5 s before a minute boundary, however long seeding took.
    clock = ShiftedClock((start - datetime.now(UTC)).total_seconds())
    started = time.perf_counter()
    missed_rows = 0

    def on_inserted(docs, when):
        nonlocal missed_rows
        missed_rows += sum(1 for doc in docs if doc.get("reason") == "missed")
        if missed_rows >= jobs:
            figures.note("missed ranges written after", f"{time.perf_counter() - started:.2f} s")
        if any(doc["scheduledFor"] == first_new_slot and doc["trigger"] == "schedule" for doc in docs):
            late = (when - first_new_slot).total_seconds()
            figures.note("first new slot", f"{first_new_slot:%H:%M:%S}, written {late:.3f} s late")

    db = ObservedDatabase(raw, clock, on_inserted)
    settings = Settings(_env_file=None)
    scheduler = Scheduler(
        db=db, runner=NoopRunner(), clock=clock, settings=settings, worker_id="bench:catchup"
    )
    stop = asyncio.Event()
    running = asyncio.create_task(scheduler.run(stop))
    ticker = asyncio.create_task(tick(figures))
    while time.perf_counter() - started < limit:
        if scheduler.leading.is_set():
            figures.note("leading after", f"{time.perf_counter() - started:.2f} s")
        if "first new slot" in figures.values and "missed ranges written after" in figures.values:
            break
        await asyncio.sleep(0.05)
    missed = await raw.job_executions.find({"reason": "missed"}).to_list(None)
    covered = sum(doc["missed"]["count"] for doc in missed)
    figures.note(
        "missed ranges",
        f"{len(missed)} records for {len({doc['jobId'] for doc in missed})} of {jobs} jobs, {covered} slots"
        + (
            f" ({min(d['missed']['firstSlot'] for d in missed):%d %H:%M} to "
            f"{max(d['missed']['lastSlot'] for d in missed):%d %H:%M})"
            if missed
            else ""
        ),
    )
    figures.note("first new slot", f"{first_new_slot:%H:%M:%S}, not written within {limit:g} s")
    ticker.cancel()
    stop.set()
    running.cancel()


def step_name(handle) -> str:
    task = getattr(getattr(handle, "_callback", None), "__self__", None)
    if isinstance(task, asyncio.Task):
        return f"task {task.get_name()!r} ({getattr(task.get_coro(), '__qualname__', '?')})"
    return repr(handle)[:80]


async def tick(figures: Figures) -> None:
    while True:
        before = time.perf_counter()
        await asyncio.sleep(0.005)
        figures.last_tick = time.perf_counter()
        figures.worst_block = max(figures.worst_block, figures.last_tick - before - 0.005)


def freeze_guard(figures: Figures, limit: float) -> None:
    """A thread: when the loop has not ticked for `limit` seconds, print what is known and end the process."""
    while True:
        time.sleep(0.5)
        if time.perf_counter() - figures.last_tick > limit:
            figures.worst_block = max(figures.worst_block, time.perf_counter() - figures.last_tick)
            figures.print(froze=True)
            os._exit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--limit", type=float, default=150.0, help="seconds to wait for the figures")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    # fresh_database takes MONGODB_URL when it is set: say which database was measured.
    database = "the server at MONGODB_URL" if os.environ.get("MONGODB_URL") else "in-memory database"
    print(
        f"{args.jobs} minutely jobs, {args.hours:g} h down, one worker (in process, real clock, {database})"
    )
    figures = Figures()
    figures.time_every_step()
    threading.Thread(target=freeze_guard, args=(figures, args.limit), daemon=True).start()
    asyncio.run(measure(args.jobs, args.hours, args.limit, figures))
    figures.print(froze=False)
    os._exit(0)  # the no-op runs still queued are of no interest


if __name__ == "__main__":
    main()
