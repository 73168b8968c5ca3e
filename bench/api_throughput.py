"""API throughput: `syncjobs api` as a process, beside baselines measured in the same run.

    python bench/api_throughput.py                 # both databases, about three minutes
    python bench/api_throughput.py --database wire --seconds 2 --concurrency 8

The API runs as `syncjobs api` runs it (create_app and run_app, settings from the environment), in a
process of its own, on two databases in turn, with a bootstrap admin token, rate limits and job quota lifted.
Before it serves, its database is given what the API and the worker would have written (`seed_database`):
a data source, a destination, and 50 incremental jobs of five entities each, created through the job store
as POST creates them, each then run three times through the worker's own status writer (a leader's fence
term and applied schedule; outcomes succeeded, failed, succeeded, with a duration each; on success the
cursor of each entity, as the http connector saves it: the newest `updated_at` seen). A stored job is then
1.1 KB of BSON with 33 top-level fields, 4 of which GET does not show (cursors, fenceTerm, lastExecutionId,
timedRunCount).

- memory: the in-memory database (as `--in-memory`), which runs inside the API process, so its work (it copies
  every document it returns) is counted as the API's CPU;
- wire: the mongoeco wire-protocol server (from `.venv-mongo`, which `make test` makes) in a process of its
  own, reached with pymongo's AsyncMongoClient as in production: the API's CPU is then the API's and its
  driver's only. That server is single-threaded Python and scans for every query, so its rates are low.

The baselines run in one other process, on the same kind of database, seeded by the same `seed_database`:

- bare: an aiohttp handler returning the job as GET returns it, from a dict;
- one find: a handler doing one find_one for the job and returning the document as stored;
- two finds: a handler doing a find_one for a token hash, then one for the job (what an authenticated GET
  needs at least without a token cache);
- find 50: one find of 50 job documents, returned as a list: the fair yardstick of list 50, which must do
  that find too (on the in-memory database most of a list's cost is the database copying 50 documents);
- find 50 unsent: the same find, answered with `{}`: what reading 50 documents costs before any of them is
  written out, the floor under list 50's CPU.

Each operation is driven by an aiohttp client on loopback: `--concurrency` connections in one event loop,
for `--seconds` or `--requests`, whichever ends first, after a short warm-up. Figures:

- req/s and p50/p99 latency as the client sees them (the client shares this machine's two cores);
- `x 1-find`: req/s over the one-find baseline's, the issue's yardstick; `x find-50`, for list 50 only, over
  the find-50 baseline's;
- CPU ms per request: the server process's user+system CPU time (from /proc) over the requests served;
- database commands per request: counted in this process, by running each operation once through the same
  application (`create_app`) on an in-memory database whose collection calls are counted. A server process
  cannot be counted from outside, and the count does not depend on load.
"""

import argparse
import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

WORKSPACE = "bench"
JOBS = 50
ENTITIES = ("customers", "orders", "invoices", "products", "refunds")
# Outcomes recorded on each job by the worker's writer before the bench starts.
RUNS = 3
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


async def wait_until_up(url: str, deadline_s: float = 20) -> None:
    end = time.monotonic() + deadline_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < end:
            try:
                async with session.get(url) as resp:
                    if resp.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit(f"nothing answered at {url}")


def job_body(source_id: str, destination_id: str, i: int) -> dict:
    return {
        "name": f"bench job {i}",
        "dataSourceId": source_id,
        "destinationDatabaseId": destination_id,
        "schedule": {"cron": f"{i % 60} * * * *", "timezone": "Europe/Berlin"},
        "syncMode": "incremental",
        "entities": list(ENTITIES),
    }


async def seed_database(db, box) -> None:
    """What the API and then the worker would have written: a source, a destination, 50 jobs created as POST
    creates them, each run RUNS times, its outcomes recorded by the worker's status writer."""
    from bson import ObjectId

    from models.clock import SystemClock
    from models.execution import ExecutionStatus
    from models.resources import DATA_SOURCE, DESTINATION
    from models.sync_job import SyncJobSpec
    from models.sync_job_store import SyncJobStore
    from worker.job_status import JobStatusWriter

    now = SystemClock().now()
    source = {
        "name": "shop",
        "type": "http",
        "baseUrl": "http://127.0.0.1:9/",
        "entities": [
            {"name": name, "path": f"/{name}", "cursorField": "updated_at", "cursorParam": "updated_since"}
            for name in ENTITIES
        ],
    }
    destination = {"name": "wh", "type": "mongodb", "database": "wh"}
    ids = []
    for kind, body in ((DATA_SOURCE, source), (DESTINATION, destination)):
        fields = kind.seal(kind.spec.validate_python(body).model_dump(by_alias=True, mode="json"), box)
        ids.append(str((await kind.store(db).insert(WORKSPACE, fields, now))["_id"]))
    jobs = SyncJobStore(db)
    created = [
        await jobs.create(WORKSPACE, SyncJobSpec.model_validate(job_body(*ids, i)), now) for i in range(JOBS)
    ]
    writer = JobStatusWriter(db)
    term = 4
    # The leader's fencing token, as its schedule writes leave it.
    await jobs.collection.update_many({}, {"$set": {"fenceTerm": term}})
    await writer.schedule_applied([job["_id"] for job in created], 1, now + timedelta(minutes=30), now, term)
    for job in created:
        for run in range(RUNS):
            started = now + timedelta(hours=run)
            succeeded = run != 1
            await writer.record_outcome(
                await jobs.collection.find_one({"_id": job["_id"]}),
                execution_id=ObjectId(),
                status=ExecutionStatus.SUCCEEDED if succeeded else ExecutionStatus.FAILED,
                started_at=started,
                finished_at=started + timedelta(seconds=4),
                duration_ms=4000 + 17 * run,
                error=None if succeeded else "GET /orders answered 503",
                cursors={
                    name: f"{started + timedelta(seconds=i):%Y-%m-%dT%H:%M:%S}.000Z"
                    for i, name in enumerate(ENTITIES)
                }
                if succeeded
                else {},
            )


async def seeded(base: str, headers: dict) -> dict:
    """What the operations need, read through the API from a seeded database."""
    ws = f"{base}/api/workspaces/{WORKSPACE}"
    async with aiohttp.ClientSession(headers=headers) as session:

        async def first(path: str) -> dict:
            async with session.get(f"{ws}/{path}?limit=1") as resp:
                assert resp.status == 200, await resp.text()
                return (await resp.json())["items"][0]

        source, destination, job = [
            await first(path) for path in ("data-sources", "destinations", "sync-jobs")
        ]
        async with session.get(f"{ws}/sync-jobs/{job['id']}") as resp:
            job = await resp.json()
    return {"ws": ws, "source": source["id"], "destination": destination["id"], "job": job}


def operations(seeded: dict) -> dict:
    """name -> (method, path, body factory or None)."""
    job_url = f"{seeded['ws']}/sync-jobs/{seeded['job']['id']}"
    counter = iter(range(10**9))
    return {
        "GET one job": ("GET", job_url, None),
        "list 50": ("GET", f"{seeded['ws']}/sync-jobs?limit=50", None),
        "status": ("GET", f"{job_url}/status", None),
        "create": (
            "POST",
            f"{seeded['ws']}/sync-jobs",
            lambda: job_body(seeded["source"], seeded["destination"], next(counter)),
        ),
    }


async def drive(url: str, method: str, body, *, pid: int, headers: dict, args) -> dict:
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def one() -> None:
            started = time.perf_counter()
            async with session.request(method, url, json=body() if body else None) as resp:
                await resp.read()
                if resp.status >= 400:
                    raise SystemExit(f"{method} {url} answered {resp.status}")
            latencies.append(time.perf_counter() - started)

        for _ in range(args.warmup):
            await one()
        latencies.clear()
        end = time.perf_counter() + args.seconds
        remaining = args.requests

        async def loop() -> None:
            nonlocal remaining
            while remaining > 0 and time.perf_counter() < end:
                remaining -= 1
                await one()

        cpu0, wall0 = cpu_seconds(pid), time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(args.concurrency)))
        cpu, wall = cpu_seconds(pid) - cpu0, time.perf_counter() - wall0
    latencies.sort()
    count = len(latencies)
    return {
        "rps": count / wall,
        "p50": 1000 * latencies[count // 2],
        "p99": 1000 * latencies[min(count - 1, int(count * 0.99))],
        "cpu_ms": 1000 * cpu / count,
        "requests": count,
    }


def combined(results: list[dict]) -> dict:
    """Rounds of one row as one: the median round's rate and latencies, CPU over all requests."""
    by_rate = sorted(results, key=lambda result: result["rps"])
    middle = by_rate[len(by_rate) // 2]
    requests = sum(result["requests"] for result in results)
    cpu_ms = sum(result["cpu_ms"] * result["requests"] for result in results) / requests
    return {**middle, "cpu_ms": cpu_ms, "requests": requests}


# --- the API's server -------------------------------------------------------------------------------------


def serve_api(port: int) -> None:
    """`syncjobs api`, its database seeded before it serves."""
    from aiohttp import web

    from api.app import create_app
    from api.keys import DB, SECRETS
    from models.logs import configure_logging
    from models.settings import Settings

    settings = Settings()
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    app = create_app(settings)

    async def seed(app: web.Application) -> None:
        await seed_database(app[DB], app[SECRETS])

    # After create_app's own start-up (which opens the database) has run.
    app.on_startup.append(seed)
    web.run_app(app, host="127.0.0.1", port=port, print=None)


# --- the baselines' server -------------------------------------------------------------------------------


def serve_baselines(port: int) -> None:
    from aiohttp import web

    from models.database import open_database
    from models.secrets import SecretBox
    from models.settings import Settings
    from models.tokens import hash_token

    # The same kind of client as the API's: mongomock-motor, or pymongo's AsyncMongoClient on the wire server.
    url = os.environ.get("BENCH_MONGODB_URL")
    db = open_database(Settings(_env_file=None, mongodb_url=url, mongodb_db="bench_baselines")).db
    job_id = None
    shown = json.loads(os.environ["BENCH_JOB"])
    token_hash = hash_token("sjt_baseline")

    def as_json(doc: dict) -> dict:
        return {("id" if k == "_id" else k): v for k, v in doc.items()}

    async def bare(_request):
        return web.json_response(shown)

    async def one_find(_request):
        doc = await db.syncjobs.find_one({"_id": job_id, "workspaceId": WORKSPACE})
        return web.json_response(as_json(doc), dumps=lambda v: json.dumps(v, default=str))

    async def two_finds(_request):
        await db.api_tokens.find_one({"tokenHash": token_hash})
        doc = await db.syncjobs.find_one({"_id": job_id, "workspaceId": WORKSPACE})
        return web.json_response(as_json(doc), dumps=lambda v: json.dumps(v, default=str))

    async def find_50(_request):
        docs = await db.syncjobs.find({"workspaceId": WORKSPACE}).sort("_id", 1).limit(50).to_list(None)
        return web.json_response(
            {"items": [as_json(doc) for doc in docs]}, dumps=lambda v: json.dumps(v, default=str)
        )

    async def find_50_unsent(_request):
        await db.syncjobs.find({"workspaceId": WORKSPACE}).sort("_id", 1).limit(50).to_list(None)
        return web.json_response({})

    async def startup(_app):
        nonlocal job_id
        await seed_database(db, SecretBox(SecretBox.new_key()))
        job_id = (await db.syncjobs.find_one({}, {"_id": 1}, sort=[("_id", 1)]))["_id"]
        await db.api_tokens.insert_one({"tokenHash": token_hash, "workspaceId": WORKSPACE})

    app = web.Application()
    app.on_startup.append(startup)
    app.router.add_get("/bare", bare)
    app.router.add_get("/one-find", one_find)
    app.router.add_get("/two-finds", two_finds)
    app.router.add_get("/find-50", find_50)
    app.router.add_get("/find-50-unsent", find_50_unsent)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# --- database commands per request, counted in process ---------------------------------------------------

COUNTED = (
    "find",
    "find_one",
    "insert_one",
    "insert_many",
    "update_one",
    "update_many",
    "replace_one",
    "find_one_and_update",
    "delete_one",
    "delete_many",
    "count_documents",
    "aggregate",
)


async def commands_per_request(seeded_ops: list[str]) -> dict[str, int]:
    from aiohttp.test_utils import TestServer
    from mongomock_motor import AsyncMongoMockCollection

    from api.app import create_app
    from models.database import open_in_memory
    from models.secrets import SecretBox
    from models.settings import Settings

    calls: Counter = Counter()
    for name in COUNTED:
        original = getattr(AsyncMongoMockCollection, name)

        def counting(self, *args, _original=original, _name=name, **kwargs):
            calls[_name] += 1
            return _original(self, *args, **kwargs)

        setattr(AsyncMongoMockCollection, name, counting)

    token = "sjt_" + secrets.token_urlsafe(16)
    settings = Settings(_env_file=None, syncjobs_bootstrap_token=token, log_level="error")
    db, box = open_in_memory("count").db, SecretBox(SecretBox.new_key())
    await seed_database(db, box)
    app = create_app(settings, db=db, secrets=box)
    headers = {"Authorization": f"Bearer {token}"}
    counts = {}
    async with TestServer(app) as server, aiohttp.ClientSession(headers=headers) as client:
        ops = operations(await seeded(str(server.make_url("")).rstrip("/"), headers))
        for _ in range(2):  # the second round: lastUsedAt written, caches warm, as under load
            for name in seeded_ops:
                method, url, body = ops[name]
                calls.clear()
                resp = await client.request(method, url, json=body() if body else None)
                assert resp.status < 400, await resp.text()
                counts[name] = sum(calls.values())
    return counts


# --- the run -----------------------------------------------------------------------------------------------


def start(argv: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def measure(url: str | None, args) -> dict[str, dict]:
    """Each row's figures, with `syncjobs api` and the baselines on the in-memory database (url None) or on
    the server at `url`."""
    from models.secrets import SecretBox

    token = "sjt_" + secrets.token_urlsafe(24)
    api_port, base_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "MONGODB_URL"},
        "SYNCJOBS_SECRET_KEY": SecretBox.new_key(),
        "SYNCJOBS_BOOTSTRAP_TOKEN": token,
        "LOG_LEVEL": "warning",
        # The API's work is measured, not its refusals: a token's rate limit and the job quota would stop it.
        "API_RATE_PER_SECOND": "1000000",
        "API_RATE_BURST": "1000000",
        "WORKSPACE_MAX_JOBS": "1000000",
    }
    if url is not None:
        env.update({"MONGODB_URL": url, "MONGODB_DB": "bench_api", "BENCH_MONGODB_URL": url})
    api = start([sys.executable, __file__, "--serve-api", str(api_port)], env)
    baselines = None
    try:
        api_base = f"http://127.0.0.1:{api_port}"
        await wait_until_up(f"{api_base}/healthz")
        headers = {"Authorization": f"Bearer {token}"}
        ready = await seeded(api_base, headers)
        baselines = start(
            [sys.executable, __file__, "--serve-baselines", str(base_port)],
            {**env, "BENCH_JOB": json.dumps(ready["job"])},
        )
        base_url = f"http://127.0.0.1:{base_port}"
        await wait_until_up(f"{base_url}/bare")

        targets = {
            f"baseline: {name}": (base_url + path, "GET", None, baselines.pid, {})
            for name, path in (
                ("bare", "/bare"),
                ("one find", "/one-find"),
                ("two finds", "/two-finds"),
                ("find 50", "/find-50"),
                ("find 50 unsent", "/find-50-unsent"),
            )
        }
        for name, (method, op_url, body) in operations(ready).items():
            targets[name] = (op_url, method, body, api.pid, headers)
        # Rows take turns in short rounds, so that load from elsewhere on the machine falls on all of them.
        # Creates run last: every job they add makes each later find on the in-memory database scan more.
        runs: dict[str, list[dict]] = {name: [] for name in targets}
        for phase in ([name for name in targets if name != "create"], ["create"]):
            for _ in range(args.rounds):
                for name in phase:
                    op_url, method, body, pid, auth = targets[name]
                    runs[name].append(await drive(op_url, method, body, pid=pid, headers=auth, args=args))
        return {name: combined(results) for name, results in runs.items()}
    finally:
        for process in (api, baselines):
            if process is not None:
                process.terminate()
                process.wait(timeout=10)


def print_table(title: str, rows: dict[str, dict], commands: dict[str, int]) -> None:
    yardstick = rows["baseline: one find"]["rps"]
    fifty = rows["baseline: find 50"]["rps"]
    print(title)
    header = (
        f"{'operation':<26}{'req/s':>9}{'x 1-find':>10}{'x find-50':>11}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'CPU ms/req':>12}{'cmds/req':>10}"
    )
    print(header)
    print("-" * len(header))
    for name, row in rows.items():
        # The find of the same 50 documents is the fair yardstick of a list of 50 only.
        of_fifty = (
            f"{row['rps'] / fifty:>11.2f}"
            if name in ("list 50", "baseline: find 50", "baseline: find 50 unsent")
            else " " * 11
        )
        print(
            f"{name:<26}{row['rps']:>9.0f}{row['rps'] / yardstick:>10.2f}{of_fifty}{row['p50']:>9.2f}"
            f"{row['p99']:>9.2f}{row['cpu_ms']:>12.2f}{commands[name]:>10}"
        )


async def main_async(args) -> None:
    from models.logs import configure_logging

    configure_logging(fmt="console", level="warning")
    commands = await commands_per_request(["GET one job", "list 50", "status", "create"])
    commands.update(
        {
            "baseline: bare": 0,
            "baseline: one find": 1,
            "baseline: two finds": 2,
            "baseline: find 50": 1,
            "baseline: find 50 unsent": 1,
        }
    )
    shape = (
        f"{args.concurrency} connections, {args.rounds} rounds of {args.seconds:g} s or {args.requests} "
        f"requests per row, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, "
        f"load average {' '.join(f'{load:.1f}' for load in os.getloadavg())}"
    )
    if args.database in ("memory", "both"):
        rows = await measure(None, args)
        print_table(f"syncjobs api on the in-memory database (in the API process), {shape}", rows, commands)
    if args.database in ("wire", "both"):
        from tests.wire.process import MONGO_PYTHON, start_server, stop_server

        if not MONGO_PYTHON.exists():
            print(f"wire server not measured: {MONGO_PYTHON.parent.parent} is missing (make test makes it)")
            return
        server, url = start_server()
        try:
            rows = await measure(url, args)
        finally:
            stop_server(server)
        print_table(f"syncjobs api on the mongoeco wire server (its own process), {shape}", rows, commands)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="per row and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=10_000, help="at most this many per row and round")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--database", choices=("memory", "wire", "both"), default="both")
    parser.add_argument("--serve-baselines", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--serve-api", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_baselines:
        serve_baselines(args.serve_baselines)
        return
    if args.serve_api:
        serve_api(args.serve_api)
        return
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
