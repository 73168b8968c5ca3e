"""How the schedule scales: 10,000 jobs on the in-memory database, beside APScheduler 3.x as the baseline.

    python bench/schedule_scale.py            # everything, several minutes
    python bench/schedule_scale.py --jobs 2000 --wire-jobs 500
    MONGODB_URL=mongodb://localhost:27017 python bench/schedule_scale.py   # the same on a real server

The same run then measures our side on the mongoeco wire-protocol server (when `make test` has made
`.venv-mongo`), with `--wire-jobs` jobs: that server is a single-threaded Python process sharing the cores
and takes tens of milliseconds per inserted job document, so its setup is kept small. Its latency is not
ours, so next to each figure the wire table prints the database's share (the sum of command durations seen
by pymongo's command monitoring), the scheduler's own share (the rest), and database commands per
operation, which hold on any server.

Each figure comes from a fresh subprocess, so peak memory (ru_maxrss) is that scenario's alone.

- load: the time from reading 10,000 job documents to a schedule ready to fire (the confirmation writes,
  scheduleAppliedVersion and nextRunAt, then run beside it; their own time is printed too).
- idle CPU: process CPU time over wall time for 5 s with nothing due.
- lag: from each due slot to its execution record being written (insert_many returned), with a no-op runner
  and no concurrency cap; 5 trials, each in a fresh process. Our side runs on a clock that stands still
  while the jobs load and then runs 60x faster than real time, so that a minute-granular cron comes due
  33 ms after loading; lags are converted back to real time. "before the write began" is the scheduler's
  own share: waking, building the batch. APScheduler's jobs use a seconds field instead, which it
  supports; it only calls a function, while we also persist every firing, here on a database that scans a
  collection for every unique-index check.
"""

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Tokyo",
    "Australia/Sydney",
    "America/Sao_Paulo",
    "Asia/Kolkata",
]
SPEED = 60.0
SEED_BATCH = 500
BENCH_DB = "syncjobs_bench"


def crons(jobs: int, distinct: int, *, quiet: bool = False) -> list[tuple[str, str]]:
    """`jobs` (cron, zone) pairs drawn from `distinct` different ones, daily at spread-out times. `quiet`
    moves them to a day half a year away, so that none comes due while the due jobs are measured."""
    day = "1 " + str((datetime.now(UTC).month + 5) % 12 + 1) if quiet else "* *"
    pairs = []
    for i in range(distinct):
        minute, hour, zone = i % 60, (i // 60) % 24, ZONES[(i // 1440) % len(ZONES)]
        pairs.append((f"{minute} {hour} {day} *", zone))
    return [pairs[i % distinct] for i in range(jobs)]


class Commands:
    """Database commands seen by pymongo's command monitoring: how many, and how long the server took."""

    def __init__(self):
        from pymongo import monitoring

        class Listener(monitoring.CommandListener):
            def started(inner, event):
                self.count += 1

            def succeeded(inner, event):
                self.seconds += event.duration_micros / 1e6

            def failed(inner, event):
                self.seconds += event.duration_micros / 1e6

        self.listener = Listener()
        self.count = 0
        self.seconds = 0.0

    def mark(self) -> tuple[int, float]:
        return self.count, self.seconds

    def since(self, mark: tuple[int, float]) -> dict:
        return {"commands": self.count - mark[0], "db_s": self.seconds - mark[1]}


COMMANDS = Commands()


async def fresh_database(url: str | None = None, *, seeded: bool = False):
    """The in-memory database, or a scratch database on the server at `url` (or MONGODB_URL) when set.
    `seeded`: the server at `url` holds the bench's jobs already (bench/seeding.py): opened as it is."""
    from models.collections import ensure_indexes
    from models.database import open_in_memory

    url = url or os.environ.get("MONGODB_URL")
    if url:
        from pymongo import AsyncMongoClient

        client = AsyncMongoClient(url, tz_aware=True, event_listeners=[COMMANDS.listener])
        if not seeded:
            await client.drop_database(BENCH_DB)
        db = client[BENCH_DB]
    else:
        db = open_in_memory("bench").db
    await ensure_indexes(db)
    return db


def report(result: dict) -> None:
    """Print a scenario's figures and end its process at once: nothing after the measurement matters
    (a lag trial would otherwise go on to run a thousand no-op executions)."""
    print(json.dumps(result), flush=True)
    os._exit(0)


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentiles(values: list[float]) -> dict:
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50": pick(0.50), "p99": pick(0.99), "max": ordered[-1], "n": len(ordered)}


# -- syncjobs -----------------------------------------------------------------------------------------


class CompressedClock:
    """Schedule time stands still at `start` until go(), then runs SPEED times faster than real time."""

    def __init__(self, start: datetime):
        self._start = start
        self._go: float | None = None
        self._started = asyncio.Event()

    def go(self) -> None:
        self._go = time.perf_counter()
        self._started.set()

    def now(self) -> datetime:
        if self._go is None:
            return self._start
        return self._start + timedelta(seconds=(time.perf_counter() - self._go) * SPEED)

    async def sleep(self, seconds: float) -> None:
        deadline = self.now() + timedelta(seconds=max(0.0, seconds))
        await self._started.wait()
        await asyncio.sleep(max(0.0, (deadline - self.now()).total_seconds()) / SPEED)


class NoopRunner:
    async def run(self, request):
        from executor.outcome import RunOutcome
        from models.execution import ExecutionStatus

        return RunOutcome(ExecutionStatus.SUCCEEDED)


def job_documents(pairs: list[tuple[str, str]], now: datetime, *, confirmed: bool = True) -> list[dict]:
    """One job document per (cron, zone), as the API creates them; `confirmed` leaves them as a previous
    leader would (nextRunAt, scheduleAppliedVersion written), which is what a takeover or a restart loads."""
    from bson import ObjectId

    from models.cron import next_fire_time
    from models.sync_job import SyncJobSpec, new_job_document

    spec = SyncJobSpec.model_validate(
        {
            "name": "bench",
            "dataSourceId": "a" * 24,
            "destinationDatabaseId": "b" * 24,
            "schedule": {"cron": "@daily"},
        }
    )
    next_of = {pair: next_fire_time(pair[0], now, pair[1]) for pair in set(pairs)} if confirmed else {}
    created = now - timedelta(hours=1)  # jobs of a running deployment, not a bulk import of a second ago
    docs = []
    for cron, zone in pairs:
        doc = {"_id": ObjectId(), **new_job_document("ws", spec, created)}
        doc["schedule"] = {"cron": cron, "timezone": zone}
        if confirmed:
            doc.update(nextRunAt=next_of[(cron, zone)], scheduleAppliedVersion=1, scheduleAppliedAt=created)
        docs.append(doc)
    return docs


async def seed(db, pairs: list[tuple[str, str]], now: datetime, *, confirmed: bool = True) -> None:
    """Insert the jobs (job_documents) and raise the jobs' change mark once, as the API's creates leave it."""
    from models.job_changes import JobChangeMark

    docs = job_documents(pairs, now, confirmed=confirmed)
    # In batches: one insert of 10,000 documents outlasts a slow server's patience (mongoeco cancels at 20 s).
    for first in range(0, len(docs), SEED_BATCH):
        await db.syncjobs.insert_many(docs[first : first + SEED_BATCH])
    await JobChangeMark(db).bump(now)


def make_scheduler(db, clock, **settings):
    from models.settings import Settings
    from worker.scheduler import Scheduler

    config = Settings(_env_file=None, log_level="warning", **settings)
    return Scheduler(db=db, runner=NoopRunner(), clock=clock, settings=config, max_concurrent=0)


async def ours_load(jobs: int, distinct: int, confirmed: bool = True, url: str | None = None) -> dict:
    from models.clock import SystemClock

    db = await fresh_database(url)
    clock = SystemClock()
    await seed(db, crons(jobs, distinct), clock.now(), confirmed=confirmed)
    scheduler = make_scheduler(db, clock)
    mark = COMMANDS.mark()
    started = time.perf_counter()
    await scheduler.load_all(term=1)
    ready = time.perf_counter() - started
    loaded = COMMANDS.since(mark)
    await scheduler.firing.confirming
    confirmed = time.perf_counter() - started
    return {
        "load_s": ready,
        "confirm_s": confirmed,
        "peak_mib": peak_mib(),
        "scheduled": len(scheduler.timetable),
        **loaded,
    }


def idle_pairs(jobs: int) -> list[tuple[str, str]]:
    """The idle scenario's jobs: 100 (cron, zone) pairs, none due for months."""
    return crons(jobs, 100, quiet=True)


async def ours_idle(jobs: int, url: str | None = None, seconds: float = 5.0, seeded: bool = False) -> dict:
    """Process CPU over wall time for `seconds` with nothing due; the resyncs in the window are timed on
    their own (CPU ms per pass), so a window without one still says what one costs. `seeded`: the server at
    `url` holds the idle_pairs(jobs) jobs already (bench/seeding.py). Also returned: the jobs the leader
    scheduled, and the executions in the database at the end (nothing due: 0)."""
    from models.clock import SystemClock
    from models.collections import JOB_EXECUTIONS
    from models.job_changes import JobChangeMark

    db = await fresh_database(url, seeded=seeded)
    clock = SystemClock()
    if seeded:
        await JobChangeMark(db).bump(clock.now())  # as seed() leaves it
    else:
        await seed(db, idle_pairs(jobs), clock.now())
    scheduler = make_scheduler(db, clock)
    resync, resync_cpu = scheduler.firing.resync, []

    async def timed_resync(term):
        began = time.process_time()
        await resync(term)
        resync_cpu.append(time.process_time() - began)

    scheduler.firing.resync = timed_resync
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop))
    await scheduler.leading.wait()
    # Leading is said before the load; on the wire server reading 10,000 jobs takes seconds, and a window
    # opened before it ends would count part of the load, and end before the first resync.
    led = time.perf_counter()
    while len(scheduler.timetable) < jobs and time.perf_counter() - led < 600:
        await asyncio.sleep(0.05)
    load_s = time.perf_counter() - led
    if scheduler.firing.confirming is not None:
        await scheduler.firing.confirming
    await asyncio.sleep(1.0)  # the term's other first steps (recovery, the loops starting)
    mark = COMMANDS.mark()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    idle = COMMANDS.since(mark)
    scheduled = len(scheduler.timetable)
    term = scheduler.lease.term if scheduler.lease else None  # above 1: leadership was lost on the way
    executions = await db[JOB_EXECUTIONS].count_documents({})
    stop.set()
    await task
    return {
        "idle_cpu_pct": 100 * cpu / wall,
        "commands_per_s": idle["commands"] / wall,
        "load_s": load_s,
        "scheduled": scheduled,
        "term": term,
        "executions": executions,
        "resyncs": len(resync_cpu),
        "resync_cpu_ms": 1000 * sum(resync_cpu) / len(resync_cpu) if resync_cpu else None,
    }


async def ours_lag(jobs: int, due: int, url: str | None = None) -> dict:
    """One trial in a fresh process: the first slot's execution records, then exit. Later slots on the same
    in-memory database would measure how long it takes to scan the previous rounds' documents instead."""
    db = await fresh_database(url)
    # Schedule time stands 2 s before a minute boundary while the jobs load, then starts to run.
    start = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1, seconds=-2)
    pairs = [("* * * * *", "UTC")] * due + crons(jobs - due, 100, quiet=True)
    # As a previous leader left them: every job's nextRunAt is its next slot, nothing was missed.
    await seed(db, pairs, start)
    clock = CompressedClock(start)
    scheduler = make_scheduler(
        db,
        clock,
        poll_interval_seconds=3600,
        resync_interval_seconds=36000,
        worker_lease_seconds=600,
        job_lock_ttl_seconds=600,
    )
    executions = scheduler.store._executions
    original = executions.insert_many

    async def timed_insert(docs, **kwargs):
        began = clock.now()
        result = await original(docs, **kwargs)
        ended = clock.now()
        slot = docs[0]["scheduledFor"]
        fired = COMMANDS.since(mark)
        report(
            {
                "lag_ms": (ended - slot).total_seconds() / SPEED * 1000,
                "before_write_ms": (began - slot).total_seconds() / SPEED * 1000,
                "count": len(docs),
                "peak_mib": peak_mib(),
                "commands": fired["commands"],
                "db_ms": fired["db_s"] * 1000,
            }
        )
        return result

    executions.insert_many = timed_insert
    running = asyncio.create_task(scheduler.run(asyncio.Event()))  # ends the process from inside timed_insert
    while len(scheduler.timetable) < jobs:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # the load's last steps (recovery, the loops starting) with time still frozen
    mark = COMMANDS.mark()
    clock.go()
    await running


# -- APScheduler 3.x baseline ---------------------------------------------------------------------------


def aps_scheduler():
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    return AsyncIOScheduler(timezone="UTC", job_defaults={"misfire_grace_time": 60, "max_instances": 10})


async def aps_load(jobs: int, distinct: int) -> dict:
    from apscheduler.triggers.cron import CronTrigger

    scheduler = aps_scheduler()
    started = time.perf_counter()
    for cron, zone in crons(jobs, distinct):
        scheduler.add_job(noop, CronTrigger.from_crontab(cron, timezone=zone))
    scheduler.start()
    elapsed = time.perf_counter() - started
    scheduler.shutdown(wait=False)
    return {"load_s": elapsed, "peak_mib": peak_mib()}


def noop():
    pass


async def aps_idle(jobs: int, seconds: float = 5.0) -> dict:
    from apscheduler.triggers.cron import CronTrigger

    scheduler = aps_scheduler()
    for cron, zone in idle_pairs(jobs):
        scheduler.add_job(noop, CronTrigger.from_crontab(cron, timezone=zone))
    scheduler.start()
    await asyncio.sleep(1.0)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    scheduler.shutdown(wait=False)
    return {"idle_cpu_pct": 100 * cpu / wall}


async def aps_lag(jobs: int, due: int, rounds: int) -> dict:
    from apscheduler.triggers.cron import CronTrigger

    lags: list[float] = []

    def record(slot_second: int):
        now = datetime.now(UTC)
        slot = now.replace(microsecond=0)
        if slot.second % 2:
            slot -= timedelta(seconds=1)
        lags.append((now - slot).total_seconds() * 1000)

    scheduler = aps_scheduler()
    for _ in range(due):
        scheduler.add_job(record, CronTrigger(second="*/2", timezone="UTC"), args=[0])
    for cron, zone in crons(jobs - due, 100, quiet=True):
        scheduler.add_job(noop, CronTrigger.from_crontab(cron, timezone=zone))
    scheduler.start()
    while len(lags) < due * rounds:
        await asyncio.sleep(0.05)
    scheduler.shutdown(wait=False)
    return {"lag_ms": percentiles(lags[: due * rounds]), "peak_mib": peak_mib()}


SCENARIOS = {
    "ours-load": ours_load,
    "ours-idle": ours_idle,
    "ours-lag": ours_lag,
    "aps-load": aps_load,
    "aps-idle": aps_idle,
    "aps-lag": aps_lag,
}


def run_scenario(name: str, script: str = __file__, **kwargs) -> dict:
    """Run one scenario of `script` in a fresh process and return what it printed last (or its error)."""
    argv = [sys.executable, script, "--scenario", name, "--args", json.dumps(kwargs)]
    out = subprocess.run(argv, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return {
            "error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"
        }
    return json.loads(out.stdout.strip().splitlines()[-1])


def scenario_result(scenarios: dict, name: str, arguments: str) -> dict:
    """Run one scenario as this process's whole job, with logging quiet."""
    import logging

    logging.disable(logging.WARNING)
    from models.logs import configure_logging

    configure_logging(fmt="json", level="error")
    return asyncio.run(scenarios[name](**json.loads(arguments)))


def ratio(ours, theirs) -> str:
    if not isinstance(ours, (int, float)) or not isinstance(theirs, (int, float)) or theirs == 0:
        return "-"
    return f"{ours / theirs:.2f}x"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--wire-jobs", type=int, default=1000, help="jobs on the wire server; 0: skip it")
    parser.add_argument("--scenario")
    parser.add_argument("--args", default="{}")
    args = parser.parse_args()
    if args.scenario:
        report(scenario_result(SCENARIOS, args.scenario, args.args))
    jobs = args.jobs
    rows = []
    for label, distinct in (("100 (cron, tz) pairs", 100), ("all pairs distinct", jobs)):
        ours = run_scenario("ours-load", jobs=jobs, distinct=distinct)
        theirs = run_scenario("aps-load", jobs=jobs, distinct=distinct)
        rows.append((f"load {jobs} jobs, {label} (s)", ours.get("load_s"), theirs.get("load_s")))
        rows.append(("  peak memory (MiB)", ours.get("peak_mib"), theirs.get("peak_mib")))
    first = run_scenario("ours-load", jobs=1000, distinct=100, confirmed=False)
    rows.append(("first-ever load of 1000 new jobs: ready (s)", first.get("load_s"), None))
    rows.append(("  confirmation writes done (s)", first.get("confirm_s"), None))
    ours, theirs = run_scenario("ours-idle", jobs=jobs), run_scenario("aps-idle", jobs=jobs)
    rows.append(("idle CPU (%)", ours.get("idle_cpu_pct"), theirs.get("idle_cpu_pct")))
    for due in (100, 1000):
        trials = [run_scenario("ours-lag", jobs=jobs, due=due) for _ in range(args.rounds)]
        failed = [trial["error"] for trial in trials if "error" in trial]
        trials = [trial for trial in trials if "error" not in trial]
        theirs = run_scenario("aps-lag", jobs=jobs, due=due, rounds=args.rounds)
        # Every record of one slot is written by one insert_many, so each trial counts once per record.
        lags = percentiles([t["lag_ms"] for t in trials for _ in range(t["count"])]) if trials else {}
        before = (
            percentiles([t["before_write_ms"] for t in trials for _ in range(t["count"])]) if trials else {}
        )
        for key in ("p50", "p99", "max"):
            rows.append(
                (f"lag, {due} due at once, {key} (ms)", lags.get(key), theirs.get("lag_ms", {}).get(key))
            )
        rows.append(("  of which before the write began, p99 (ms)", before.get("p99"), None))
        for error in failed + ([theirs["error"]] if "error" in theirs else []):
            rows.append((f"  a trial failed: {error}", None, None))
    width = max(len(row[0]) for row in rows)
    print(f"{'':<{width}}  {'syncjobs':>10}  {'APScheduler':>11}  {'ratio':>7}")
    for name, ours_value, theirs_value in rows:
        fmt = lambda v: f"{v:10.3f}" if isinstance(v, (int, float)) else f"{'-':>10}"  # noqa: E731
        change = ratio(ours_value, theirs_value)
        print(f"{name:<{width}}  {fmt(ours_value)}  {fmt(theirs_value):>11}  {change:>7}")
    if args.wire_jobs:
        wire_table(args.wire_jobs, args.rounds)


def wire_table(jobs: int, rounds: int) -> None:
    """Our side on the mongoeco wire-protocol server: each figure with the database's share, the scheduler's
    own, and commands per operation."""
    from tests.wire.process import MONGO_PYTHON, start_server, stop_server

    if not MONGO_PYTHON.exists():
        print(f"\nwire server not measured: {MONGO_PYTHON.parent.parent} is missing (make test makes it)")
        return
    process, url = start_server()
    try:
        load = run_scenario("ours-load", jobs=jobs, distinct=100, url=url)
        idle = run_scenario("ours-idle", jobs=jobs, url=url)
        # Fewer trials than in memory: each one seeds the slow server afresh.
        lags = [run_scenario("ours-lag", jobs=jobs, due=100, url=url) for _ in range(min(rounds, 2))]
    finally:
        stop_server(process)
    rows = []
    if "error" in load:
        rows.append((f"load failed: {load['error']}", None, None, None))
    else:
        own = load["load_s"] - load["db_s"]
        rows.append((f"load {jobs} jobs, 100 pairs (s)", load["load_s"], own, load["commands"] / jobs))
    if "error" in idle:
        rows.append((f"idle failed: {idle['error']}", None, None, None))
    else:
        rows.append(("idle CPU (%); commands/s", idle["idle_cpu_pct"], None, idle["commands_per_s"]))
    for trial in lags:
        if "error" in trial:
            rows.append((f"lag trial failed: {trial['error']}", None, None, None))
            continue
        rows.append(
            (
                f"lag, {trial['count']} due at once (ms)",
                trial["lag_ms"],
                trial["before_write_ms"],
                trial["commands"] / trial["count"],
            )
        )
    width = max(len(row[0]) for row in rows)
    print(
        f"\non the mongoeco wire server ({jobs} jobs): each figure, the scheduler's own share of it, and"
        " database commands per operation (load: per job loaded; idle: per second; lag: per execution)"
    )
    print(f"{'':<{width}}  {'figure':>10}  {'own share':>10}  {'cmds/op':>9}")
    for name, value, own, per in rows:
        fmt = lambda v: f"{v:10.3f}" if isinstance(v, (int, float)) else f"{'-':>10}"  # noqa: E731
        print(f"{name:<{width}}  {fmt(value)}  {fmt(own)}  {fmt(per)[1:]}")


if __name__ == "__main__":
    main()
