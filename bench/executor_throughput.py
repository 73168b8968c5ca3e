"""No-op runs per second through the real worker, beside the spawn floor measured in the same run.

    python bench/executor_throughput.py                  # in memory and on the mongoeco wire server
    python bench/executor_throughput.py --runs 60 --poll 1 --child python

Our side is the worker as `syncjobs worker` builds it (worker.scheduler.Scheduler with the real
executor.runner.SubprocessRunner, its supervisor per source forked by the worker's fork server, the job
lock, the claim, the status writes),
leading on a fresh database with one command source whose registered connector is a no-op child: it prints
one result line (`{"type": "result", "status": "succeeded"}`) and exits. Runs are queued as the API queues
them (models.execution_store.ExecutionStore.queue_manual_run, one manual run per job), from a client of
their own so the worker's database commands are counted apart.

- runs/s at concurrency 1, 4 and 8 (MAX_CONCURRENT_RUNS): `--runs` manual runs queued at once, counted from
  the first run's `startedAt` to the last one's `finishedAt` (the wait for the next poll is the trigger
  figure's, not this one's).
- floor: the same child argv spawned with asyncio.create_subprocess_exec at the same concurrency, fed the
  same kind of spec line on stdin and read to its end, with no database and no supervisor; measured just
  before and just after ours and averaged, since the load of a shared machine drifts. Target: >= 0.6x the
  floor at concurrency 4.
- trigger to start: one manual run at a time on an idle worker, from its queueing to its `startedAt`, p50
  and p95. Target: p50 <= POLL_INTERVAL_SECONDS + 50 ms (the worker has no change streams on either
  backend, so a queued run is found at the next poll).
- worker CPU per run: the worker process's user + system time over the runs, divided by them (its
  threads included, its children not: the sources, their supervisors and the fork server are other
  processes). In memory it includes the database itself and the bench's own queueing and polling.
- database commands per run, on the wire server: every command the worker's client sent while the runs
  went (pymongo command monitoring), less the idle worker's own rate over the same time (polls, lease
  renewals), divided by the runs. Target: <= 6. The in-memory database has no wire protocol, so nothing
  counts its commands there.

`--child python` (default) is this Python with -I -S printing the line: a child that costs a Python start-up
as a real connector does. Each run also has its supervisor (executor/supervisor.py), forked by the worker's
fork server (executor/fork_server.py), which the floor has not: a fork, not a second Python start-up.
`--child echo` is /bin/echo, which makes the floor ten times higher. Each measurement runs in a process
of its own.

On the build machine (2 cores) with a Python child, the worker's own CPU per run in memory is about 5 ms
(2026-11-23; about 6.5 before the claim became an update), half of it the in-memory database: the claim
and the end of the run, each an update over job_executions whose three unique indexes and TTL index
mongomock checks by scanning the whole collection, the job's status, the lock. The rest is the runs'
pipes and tasks. The child costs about 10 ms of CPU, its supervisor about 2.5 (posix_spawn without a
change of user) and the fork server about 1.
"""

import argparse
import asyncio
import json
import os
import pwd
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.schedule_scale import run_scenario, scenario_result  # noqa: E402

RESULT_LINE = json.dumps({"type": "result", "status": "succeeded", "stats": {}})
CONCURRENCY = (1, 4, 8)
TRIGGER_SAMPLES = 15
TARGET_FLOOR_RATIO = 0.6
TARGET_COMMANDS = 6


def child_argv(kind: str) -> list[str]:
    if kind == "python":
        return [sys.executable, "-I", "-S", "-c", f"print({RESULT_LINE!r})"]
    return ["/bin/echo", RESULT_LINE]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- the floor: the same child, spawned bare ------------------------------------------------------------


async def spawn_floor(argv: list[str], runs: int, concurrency: int) -> float:
    """Runs per second of `argv` spawned `runs` times, `concurrency` at once: spec in, output read, reaped."""
    slots = asyncio.Semaphore(concurrency)
    spec = json.dumps({"executionId": "x", "entities": None, "source": {}}).encode() + b"\n"

    async def one() -> None:
        async with slots:
            process = await asyncio.create_subprocess_exec(
                *argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            await process.communicate(spec)

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(runs)))
    return runs / (time.perf_counter() - started)


# -- our side: the real worker ---------------------------------------------------------------------------


class Commands:
    """Commands the worker's client sent (pymongo command monitoring)."""

    def __init__(self):
        from pymongo import monitoring

        outer = self

        class Listener(monitoring.CommandListener):
            def started(self, event):
                outer.count += 1

            def succeeded(self, event):
                pass

            def failed(self, event):
                pass

        self.listener = Listener()
        self.count = 0


async def open_databases(url: str | None, commands: Commands):
    """(the worker's database, the API's database): one client each on the wire server, so the worker's
    commands are counted apart; one in-memory database shared by both otherwise."""
    from models.collections import ensure_indexes

    if url:
        from pymongo import AsyncMongoClient

        worker = AsyncMongoClient(url, tz_aware=True, event_listeners=[commands.listener])
        api = AsyncMongoClient(url, tz_aware=True)
        await api.drop_database("syncjobs_bench")
        db = api["syncjobs_bench"]
        await ensure_indexes(db)
        return worker["syncjobs_bench"], db
    from models.database import open_in_memory

    db = open_in_memory("bench").db
    await ensure_indexes(db)
    return db, db


async def seed_jobs(db, *, argv: list[str], jobs: int, secrets) -> list[dict]:
    """One no-op connector, one command source using it, one destination, and `jobs` jobs that never come
    due by themselves (yearly), as the API would store them."""
    from models.connectors import ConnectorCatalog, ConnectorSpec
    from models.resources import DATA_SOURCE, DESTINATION
    from models.sync_job import SyncJobSpec
    from models.sync_job_store import SyncJobStore

    now = datetime.now(UTC)
    connector = ConnectorSpec.model_validate({"name": "noop", "executable": argv[0], "args": argv[1:]})
    await ConnectorCatalog(db).create(connector, now)
    source = DATA_SOURCE.spec.validate_python(
        {"name": "noop", "type": "command", "connector": "noop"}
    ).model_dump(by_alias=True, mode="json")
    src = await DATA_SOURCE.store(db).insert("ws", DATA_SOURCE.seal(source, secrets), now)
    destination = DESTINATION.spec.validate_python(
        {"name": "dst", "type": "mongodb", "database": "warehouse"}
    ).model_dump(by_alias=True, mode="json")
    dst = await DESTINATION.store(db).insert("ws", DESTINATION.seal(destination, secrets), now)
    spec = SyncJobSpec.model_validate(
        {
            "name": "noop",
            "dataSourceId": str(src["_id"]),
            "destinationDatabaseId": str(dst["_id"]),
            "schedule": {"cron": "0 0 1 1 *", "timezone": "UTC"},
            "syncMode": "full",
            "overlapPolicy": "queue",
        }
    )
    store = SyncJobStore(db)
    return [await store.create("ws", spec, now) for _ in range(jobs)]


async def finished(db, execution_ids: list, *, within: float, every: float = 0.1) -> list[dict]:
    """The executions once all have ended, polled from the API's side. In memory this poll shares the
    worker's event loop (an API would be a process of its own), so it stays rare: the figures come from
    the documents' dates, not from when the poll saw them."""
    deadline = time.perf_counter() + within
    while True:
        # While any is still going, a look for one unfinished (the date first: a finished run fails that
        # test at once, so the poll costs the worker's loop little); then one read of them all.
        going = await db.job_executions.find_one(
            {"finishedAt": None, "_id": {"$in": execution_ids}}, {"status": 1}
        )
        if going is None:
            docs = await db.job_executions.find(
                {"_id": {"$in": execution_ids}}, {"status": 1, "startedAt": 1, "finishedAt": 1, "error": 1}
            ).to_list(None)
            if len(docs) == len(execution_ids):
                return docs
        if time.perf_counter() > deadline:
            docs = await db.job_executions.find({"_id": {"$in": execution_ids}}, {"status": 1}).to_list(None)
            states = sorted(doc["status"] for doc in docs)
            raise TimeoutError(f"runs not finished after {within:.0f} s: {states}")
        await asyncio.sleep(every)


async def ours(url: str | None, child: str, runs: int, poll: float, concurrency: int) -> dict:
    """One backend: the worker at `concurrency`; trigger-to-start samples at concurrency 1 only."""
    from executor.runner import SubprocessRunner
    from models.clock import SystemClock
    from models.execution_store import ExecutionStore
    from models.secrets import SecretBox
    from models.settings import Settings
    from worker.scheduler import Scheduler

    commands = Commands()
    worker_db, api_db = await open_databases(url, commands)
    secrets = SecretBox(SecretBox.new_key())
    jobs = await seed_jobs(api_db, argv=child_argv(child), jobs=runs, secrets=secrets)
    settings = Settings(
        _env_file=None,
        log_level="error",
        syncjobs_secret_key=SecretBox.new_key(),
        poll_interval_seconds=poll,
        max_concurrent_runs=concurrency,
        kill_grace_seconds=2,
        # As `syncjobs dev` does where the default user cannot run this Python: the sources run as us.
        source_user=pwd.getpwuid(os.geteuid()).pw_name,
    )
    clock = SystemClock()
    runner = SubprocessRunner(worker_db, secrets=secrets, settings=settings, clock=clock)
    scheduler = Scheduler(db=worker_db, runner=runner, clock=clock, settings=settings)
    store = ExecutionStore(api_db, retention_days=settings.execution_retention_days)
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop))
    try:
        await asyncio.wait_for(scheduler.leading.wait(), 30)
        await asyncio.sleep(max(1.0, 2 * poll))  # the term's load and recovery are not a run's cost
        idle_from, idle_count = time.perf_counter(), commands.count
        await asyncio.sleep(max(3.0, 3 * poll))
        idle_rate = (commands.count - idle_count) / (time.perf_counter() - idle_from)
        result: dict = {"concurrency": concurrency}
        if concurrency == 1:
            delays = []
            for job in jobs[:TRIGGER_SAMPLES]:
                queued = await store.queue_manual_run(job, clock.now())
                (doc,) = await finished(api_db, [queued["_id"]], within=60)
                delays.append((doc["startedAt"] - queued["queuedAt"]).total_seconds())
                # Queued at a random moment against the poll, as a user's request would be.
                await asyncio.sleep(poll * (len(delays) % 7) / 7)
            result["trigger_p50_ms"] = 1000 * percentile(delays, 0.5)
            result["trigger_p95_ms"] = 1000 * percentile(delays, 0.95)
        count_from, began, cpu_from = commands.count, time.perf_counter(), time.process_time()
        queued = [await store.queue_manual_run(job, clock.now()) for job in jobs]
        docs = await finished(api_db, [doc["_id"] for doc in queued], within=600)
        spent = time.perf_counter() - began
        failed = [doc for doc in docs if doc["status"] != "succeeded"]
        if failed:
            raise RuntimeError(f"{len(failed)} runs did not succeed: {failed[0].get('error')}")
        first = min(doc["startedAt"] for doc in docs)
        last = max(doc["finishedAt"] for doc in docs)
        result["runs_per_s"] = len(docs) / max((last - first).total_seconds(), 1e-3)
        result["cpu_ms_per_run"] = 1000 * (time.process_time() - cpu_from) / len(docs)
        if url:
            result["commands_per_run"] = (commands.count - count_from - idle_rate * spent) / len(docs)
        return result
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


# -- the table -------------------------------------------------------------------------------------------


def scenario(name: str, **kwargs) -> dict:
    return run_scenario(name, script=__file__, **kwargs)


async def floor(child: str, runs: int, concurrency: int) -> dict:
    await spawn_floor(child_argv(child), min(runs, 8), concurrency)  # warm the page cache
    return {"runs_per_s": await spawn_floor(child_argv(child), runs, concurrency)}


SCENARIOS = {"ours": ours, "floor": floor}


def backend_rows(label: str, url: str | None, args) -> list[str]:
    rows = []
    for concurrency in CONCURRENCY:
        # The floor just before and just after ours, averaged: on a shared machine the load drifts.
        before = scenario("floor", child=args.child, runs=args.runs, concurrency=concurrency)
        ours_ = scenario(
            "ours", url=url, child=args.child, runs=args.runs, poll=args.poll, concurrency=concurrency
        )
        after = scenario("floor", child=args.child, runs=args.runs, concurrency=concurrency)
        failure = next((r["error"] for r in (before, ours_, after) if "error" in r), None)
        if failure:
            rows.append(f"{label:<12} {concurrency:>3}  failed: {failure}")
            continue
        bare = {"runs_per_s": (before["runs_per_s"] + after["runs_per_s"]) / 2}
        ratio = ours_["runs_per_s"] / bare["runs_per_s"]
        target = ""
        if concurrency == 4:
            target = "meets" if ratio >= TARGET_FLOOR_RATIO else "MISSES"
        commands = ours_.get("commands_per_run")
        rows.append(
            f"{label:<12} {concurrency:>3} {ours_['runs_per_s']:9.1f} {bare['runs_per_s']:9.1f} "
            f"{ratio:6.2f}x {target:>6} {ours_['cpu_ms_per_run']:8.1f} "
            + (f"{commands:9.1f}" if commands is not None else f"{'n/a':>9}")
        )
        if "trigger_p50_ms" in ours_:
            limit = args.poll * 1000 + 50
            rows.append(
                f"{'':<12} trigger to start: p50 {ours_['trigger_p50_ms']:.0f} ms, "
                f"p95 {ours_['trigger_p95_ms']:.0f} ms (target p50 <= {limit:.0f} ms: "
                f"{'meets' if ours_['trigger_p50_ms'] <= limit else 'MISSES'})"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=40, help="runs per measurement")
    parser.add_argument("--poll", type=float, default=1.0, help="POLL_INTERVAL_SECONDS of the worker")
    parser.add_argument("--child", choices=("echo", "python"), default="python")
    parser.add_argument("--no-wire", action="store_true")
    parser.add_argument("--scenario")
    parser.add_argument("--args", default="{}")
    args = parser.parse_args()
    if args.scenario:
        print(json.dumps(scenario_result(SCENARIOS, args.scenario, args.args)), flush=True)
        return
    print(
        f"no-op runs through the worker vs the spawn floor ({args.runs} runs each, child: "
        f"{' '.join(child_argv(args.child))[:40]}..., poll {args.poll:g} s)"
    )
    print(
        f"{'database':<12} {'c':>3} {'runs/s':>9} {'floor/s':>9} {'ratio':>7} {'>=0.6':>6} {'cpu ms':>8} "
        f"{'cmds/run':>9}"
    )
    for row in backend_rows("in memory", None, args):
        print(row)
    if not args.no_wire:
        from tests.wire.process import MONGO_PYTHON, start_server, stop_server

        if not MONGO_PYTHON.exists():
            print(f"wire server not measured: {MONGO_PYTHON.parent.parent} is missing (make test makes it)")
            return
        process, url = start_server()
        try:
            for row in backend_rows("wire server", url, args):
                print(row)
        finally:
            stop_server(process)
    print(f"cmds/run: the worker's commands per run beyond its idle rate (target <= {TARGET_COMMANDS})")
    print("cpu ms: the worker process's CPU per run (in memory: with the database and the bench's queueing)")


if __name__ == "__main__":
    main()
