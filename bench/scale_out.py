"""Scale-out: no-op runs per second with 1, 2 and 3 `syncjobs worker` processes on one database, at the same
per-worker capacity, and the database commands a run costs.

    python bench/scale_out.py --runs 120 --capacity 4

Each round starts `syncjobs api` once (to register the no-op connector, a data source, a destination and
the jobs through the API, as an operator and a tenant would), then N worker processes; once each has
written its heartbeat, it queues one manual run for each of `--runs` jobs at once and times until every run
has ended. The baseline is the same round with one worker: the figure is the ratio. The no-op source is
`printf` printing one result line: the run's cost is ours (claim, spawn, supervise, record), not the
source's. The database is the mongoeco wire server of `.venv-mongo` (or MONGODB_URL when set).

Commands per run are counted in process (pymongo's command monitoring sees only its own client): one
worker, the real runner, the same runs, over the same server.

On this machine (2 cores) the worker processes, their sources, the API and the single-threaded mongoeco
server share two cores: the figures say where the time goes (the database's share, from its command
durations in the in-process round) so that the bottleneck is named rather than guessed.
"""

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from pymongo import MongoClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.schedule_scale import COMMANDS  # noqa: E402
from models.collections import JOB_EXECUTIONS, WORKERS  # noqa: E402
from models.execution import Trigger, new_execution_document  # noqa: E402
from models.secrets import SecretBox  # noqa: E402
from tests.processes_http import api_answers, call_api, wait_for  # noqa: E402
from tests.test_cli import free_port  # noqa: E402
from tests.wire.process import MONGO_PYTHON, start_server, stop_server  # noqa: E402

ADMIN = "sjt_bench_" + uuid.uuid4().hex
WORKSPACE = "ws-bench"
SECRET_KEY = SecretBox.new_key()
RESULT_LINE = '{"type": "result", "status": "succeeded"}\n'


def stat_fields(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (empty once the process is gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process and its ended children have used so far, with its live children's
    likewise: a worker's fork server, whose ended children are each run's supervisor with its source (Linux
    /proc), 0 once it is gone."""
    family = [pid] + [
        int(p) for p in os.listdir("/proc") if p.isdigit() and stat_fields(int(p))[1:2] == [str(pid)]
    ]
    ticks = sum(int(field) for member in family for field in stat_fields(member)[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


class Round:
    """One database, the API, and the worker processes of one measurement."""

    def __init__(self, url: str, capacity: int, tmp: Path):
        self.db_name = f"scale_{uuid.uuid4().hex[:8]}"
        self.client = MongoClient(url, tz_aware=True)
        self.db = self.client[self.db_name]
        self.tmp = tmp
        self.port = free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("MONGODB_URL",)},
            "MONGODB_URL": url,
            "MONGODB_DB": self.db_name,
            "SYNCJOBS_SECRET_KEY": SECRET_KEY,
            "SYNCJOBS_BOOTSTRAP_TOKEN": ADMIN,
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "warning",
            "MAX_CONCURRENT_RUNS": str(capacity),
            "POLL_INTERVAL_SECONDS": "0.5",
            "WORKER_LEASE_SECONDS": "5",
        }
        self.processes: list[subprocess.Popen] = []

    def spawn(self, *args: str) -> subprocess.Popen:
        log = open(self.tmp / f"{args[0]}{len(self.processes)}.log", "w")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, "-m", "syncjobs", *args], stdout=log, stderr=subprocess.STDOUT, env=self.env
        )
        self.processes.append(process)
        return process

    def call(self, method: str, path: str, body: dict | None = None, under: str | None = None) -> dict:
        base = under if under is not None else f"/api/workspaces/{WORKSPACE}"
        return call_api(self.port, ADMIN, method, base + path, body, timeout=30)

    def setup(self, jobs: int) -> list[dict]:
        self.spawn("api", "--port", str(self.port))
        wait_for(lambda: api_answers(self.port), timeout=60, message="the API")
        connector = {"name": "noop", "executable": "/usr/bin/printf", "args": [RESULT_LINE]}
        self.call("POST", "/connectors", connector, under="/api/admin")
        source = self.call("POST", "/data-sources", {"name": "noop", "type": "command", "connector": "noop"})
        destination = self.call(
            "POST", "/destinations", {"name": "d", "type": "mongodb", "database": self.db_name + "_dest"}
        )
        created = []
        for n in range(jobs):
            body = {
                "name": f"noop{n}",
                "dataSourceId": source["id"],
                "destinationDatabaseId": destination["id"],
                "schedule": {"cron": "0 0 1 1 *", "timezone": "UTC"},
                "retry": {"maxAttempts": 1},
            }
            created.append(self.call("POST", "/sync-jobs", body))
        return [self.db["syncjobs"].find_one({"name": job["name"]}) for job in created]

    def start_workers(self, count: int) -> None:
        for _ in range(count):
            self.spawn("worker")
        wait_for(
            lambda: self.db[WORKERS].count_documents({}) >= count,
            timeout=60,
            message="the workers' heartbeats",
        )

    def queue_and_time(self, jobs: list[dict], server_pid: int | None) -> tuple[float, int, dict]:
        workers = [process.pid for process in self.processes[1:]]
        cpu_before = {pid: cpu_seconds(pid) for pid in [*workers, *([server_pid] if server_pid else [])]}
        now = datetime.now(UTC)
        runs = [
            new_execution_document(job=job, trigger=Trigger.MANUAL, scheduled_for=now, now=now)
            for job in jobs
        ]
        started = time.monotonic()
        self.db[JOB_EXECUTIONS].insert_many(runs)
        ended = {"$in": ["succeeded", "failed", "timed_out", "canceled", "abandoned", "skipped"]}
        wait_for(
            lambda: self.db[JOB_EXECUTIONS].count_documents({"status": ended}) >= len(runs),
            timeout=600,
            message="every run to end",
        )
        elapsed = time.monotonic() - started
        used = {pid: cpu_seconds(pid) - before for pid, before in cpu_before.items()}
        busy = {
            "workers": sum(used[pid] for pid in workers) / elapsed,
            "database": used[server_pid] / elapsed if server_pid else None,
        }
        failed = self.db[JOB_EXECUTIONS].count_documents({"status": {"$ne": "succeeded"}})
        if failed:
            doc = self.db[JOB_EXECUTIONS].find_one({"status": {"$ne": "succeeded"}})
            print(f"  {failed} runs did not succeed, e.g. {doc.get('status')}: {doc.get('error')}")
        return elapsed, len(self.db[JOB_EXECUTIONS].distinct("workerId")), busy

    def close(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
        self.client.drop_database(self.db_name)
        self.client.drop_database(self.db_name + "_dest")
        self.client.close()


async def commands_per_run(url: str, runs: int, capacity: int) -> dict:
    """One worker in process, the real runner, `runs` no-op manual runs: commands and the database's
    share of the time, seen by pymongo's command monitoring."""
    from pymongo import AsyncMongoClient

    from executor.runner import SubprocessRunner
    from models.clock import SystemClock
    from models.collections import ensure_indexes
    from models.secrets import secret_box_from
    from models.settings import Settings
    from worker.scheduler import Scheduler

    db_name = f"scale_cmd_{uuid.uuid4().hex[:8]}"
    client = AsyncMongoClient(url, tz_aware=True, event_listeners=[COMMANDS.listener])
    db = client[db_name]
    await ensure_indexes(db)
    sync_client = MongoClient(url, tz_aware=True)
    try:
        round_ = Round(url, capacity, Path(tempfile.mkdtemp()))
        round_.db_name, round_.db = db_name, sync_client[db_name]
        round_.env["MONGODB_DB"] = db_name
        jobs = round_.setup(runs)
        for process in round_.processes:  # the API set the jobs up; the worker runs in this process
            process.terminate()
        settings = Settings(
            mongodb_url=url,
            mongodb_db=db_name,
            max_concurrent_runs=capacity,
            poll_interval_seconds=0.5,
            syncjobs_secret_key=SECRET_KEY,
        )
        clock = SystemClock()
        runner = SubprocessRunner(db, secrets=secret_box_from(settings), settings=settings, clock=clock)
        scheduler = Scheduler(db=db, runner=runner, clock=clock, settings=settings)
        stop = asyncio.Event()
        task = asyncio.create_task(scheduler.run(stop))
        await asyncio.sleep(2)  # the term's start (load, fence, recovery): not the runs' cost
        mark = COMMANDS.mark()
        now = datetime.now(UTC)
        queued = [
            new_execution_document(job=job, trigger=Trigger.MANUAL, scheduled_for=now, now=now)
            for job in jobs
        ]
        started = time.monotonic()
        await db[JOB_EXECUTIONS].insert_many(queued)
        active = {"status": {"$in": ["queued", "running"]}}
        # Watched through the other client: the bench's own reads are not the worker's commands.
        while await asyncio.to_thread(sync_client[db_name][JOB_EXECUTIONS].count_documents, active):
            await asyncio.sleep(0.1)
        elapsed = time.monotonic() - started
        seen = COMMANDS.since(mark)
        stop.set()
        await task
        return {
            "runs": runs,
            "commands_per_run": seen["commands"] / runs,
            "in_flight": seen["db_s"] / elapsed,
            "runs_per_s": runs / elapsed,
        }
    finally:
        await client.drop_database(db_name)
        await client.close()
        sync_client.close()


def main() -> None:
    from models.logs import configure_logging

    configure_logging(fmt="console", level="warning")
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=120)
    parser.add_argument("--capacity", type=int, default=4)
    parser.add_argument("--workers", default="1,2,3")
    args = parser.parse_args()
    url = os.environ.get("MONGODB_URL")
    server = None
    if not url:
        if not MONGO_PYTHON.exists():
            raise SystemExit(f"{MONGO_PYTHON.parent.parent} is missing: `make test` makes it")
        server, url = start_server()
    try:
        print(
            f"{args.runs} no-op runs, capacity {args.capacity} per worker, database "
            + ("MONGODB_URL" if server is None else "the mongoeco wire server")
        )
        rates = {}
        for count in [int(n) for n in args.workers.split(",")]:
            round_ = Round(url, args.capacity, Path(tempfile.mkdtemp()))
            try:
                jobs = round_.setup(args.runs)
                round_.start_workers(count)
                elapsed, used, busy = round_.queue_and_time(jobs, server.pid if server else None)
            finally:
                round_.close()
            rates[count] = args.runs / elapsed
            ratio = rates[count] / rates[min(rates)]
            print(
                f"  {count} worker(s): {rates[count]:6.1f} runs/s  "
                f"({ratio:.2f}x of 1 worker; runs landed on {used}); CPU in cores: workers with their runs "
                f"{busy['workers']:.2f}"
                + (f", database server {busy['database']:.2f}" if busy["database"] is not None else "")
                + f" of {os.cpu_count()}"
            )
        cost = asyncio.run(commands_per_run(url, min(args.runs, 60), args.capacity))
        print(
            f"  commands per run: {cost['commands_per_run']:.1f} "
            f"(one worker in process, {cost['runs']} runs; "
            f"{cost['in_flight']:.1f} commands in flight on average: the server's time over the wall time)"
        )
    finally:
        if server is not None:
            stop_server(server)


if __name__ == "__main__":
    main()
