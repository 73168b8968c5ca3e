"""Execution statistics over 100,000 executions on the mongoeco wire-protocol server, beside baselines.

    python bench/statistics_scale.py                     # 100,000 + 10,000 executions
    python bench/statistics_scale.py --executions 20000 --repeats 5
    MONGODB_URL=mongodb://127.0.0.1:27017/?directConnection=true python bench/statistics_scale.py

Data: `--executions` executions of one workspace (`ws-main`, 80 jobs) in the last 30 days (the default
retention), plus a tenth as many spread over four smaller workspaces, so the index has something to leave out.
Each job fires on its own interval; the documents are what the worker writes (trigger schedule, retry or
manual; succeeded, failed, timed out, abandoned, skipped, canceled, a few queued or running; per-job
lognormal durations; stats of one to three entities; a log tail; expireAt for the retention).

Seeding: mongoeco's wire `insert` costs O(n) per document (see bench/seeded_mongoeco.py), so the server is
started by bench/seeded_mongoeco.py in `.venv-mongo` and seeds its engine in-process from a BSON file this
script writes; then this script creates the indexes over the wire with the production index setup
(`models.collections.ensure_indexes`). With MONGODB_URL set, it inserts over the wire instead (insert_many,
batches of 5,000) into a database of its own, dropped at the end.

Then `syncjobs api` runs as a process on that database with a bootstrap admin token, and each row below is
timed `--repeats` times, the rows taking turns so that load from elsewhere falls on all of them:

- http: GET /api/workspaces/ws-main/statistics?days=30 with the admin token (the issue's figure);
- call: models.statistics.execution_statistics for the same period, in this process (what the handler runs);
- aggregation: the same aggregation alone, no Python after it;
- job: the statistics of one job over 30 days (index `job_history`);
- baseline count: count_documents of the same executions (an indexed count, one round trip);
- baseline find: find() of the same executions with only the fields the statistics read.

Printed: each round as it ends, then p50 and p99 in ms (with 3 repeats the p99 is the max), and each p50
over the baseline count's p50 and the baseline find's. mongoeco evaluates queries in Python (its explain:
`scan > filter`, the whole collection), so its figures say how our pipeline fares there; on a MongoDB server
(set MONGODB_URL) the same rows give that server's figures. At 100,000 executions in the period mongoeco
does not answer the aggregation: it blocks its one event loop past pymongo's heartbeat and the driver
cancels it (CHANGELOG.md); `--executions 20000` completes in about 5 minutes.
"""

import argparse
import asyncio
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.seeding import start_seeded_mongoeco  # noqa: E402

DB_NAME = "bench_statistics"
MAIN = "ws-main"
OTHERS = ["ws-b", "ws-c", "ws-d", "ws-e"]
DAYS = 30
TARGET_MS = 200
API_LOG = Path(tempfile.gettempdir()) / "bench_statistics_api.log"
# Outcomes of a run that started, by weight; skipped and canceled never start.
OUTCOMES = {
    "succeeded": 820,
    "failed": 70,
    "timed_out": 15,
    "abandoned": 5,
    "skipped": 60,
    "canceled": 25,
}
ENTITIES = ["customers", "orders", "invoices", "products", "events"]


def worker_ids(rng: random.Random) -> list[str]:
    return [f"worker-{n}:{rng.randint(100, 9999)}:{uuid.UUID(int=rng.getrandbits(128))}" for n in range(3)]


def job_executions(
    rng: random.Random, workspace: str, job_id, count: int, now: datetime, workers: list[str]
) -> list[dict]:
    """`count` executions of one job, its slots evenly spaced over the last DAYS days."""
    from models.execution import Trigger, new_execution_document

    interval = timedelta(days=DAYS) / count
    first = now - timedelta(days=DAYS) + interval * rng.random()
    median_ms = rng.choice([800, 4_000, 30_000, 240_000])
    timeout_ms = median_ms * 20
    entities = rng.sample(ENTITIES, rng.randint(1, 3))
    docs = []
    for slot in range(count):
        scheduled = first + interval * slot
        roll = rng.random()
        trigger, attempt = ("manual", 1) if roll < 0.03 else ("retry", 2) if roll < 0.10 else ("schedule", 1)
        if trigger == "manual":
            scheduled += timedelta(seconds=rng.uniform(1, 60))  # a manual run's slot is its own moment
        queued = scheduled + timedelta(milliseconds=rng.randint(5, 900))
        status = rng.choices(list(OUTCOMES), weights=list(OUTCOMES.values()))[0]
        if now - queued < timedelta(minutes=2) and slot == count - 1:
            status = "running" if rng.random() < 0.5 else "queued"
        # The document the worker writes, so the bench reads what production stores.
        doc = new_execution_document(
            job={"_id": job_id, "workspaceId": workspace},
            trigger=Trigger(trigger),
            scheduled_for=scheduled,
            now=queued,
            attempt=attempt,
        )
        doc["status"] = status
        if status in ("skipped", "canceled"):
            finished = queued + timedelta(milliseconds=rng.randint(1, 500))
            doc.update(finishedAt=finished, reason="overlap" if status == "skipped" else "job_deleted")
        elif status != "queued":
            started = queued + timedelta(milliseconds=rng.randint(10, 2000))
            duration = timeout_ms if status == "timed_out" else int(rng.lognormvariate(0, 0.6) * median_ms)
            worker = rng.choice(workers)
            doc.update(
                startedAt=started,
                workerId=worker,
                pid=rng.randint(1000, 60000),
                logTail=[f"{entity}: page {page} read" for entity in entities for page in range(1, 3)],
            )
            if status != "running":
                written = {
                    entity: {"read": (n := rng.randint(0, 5000)), "written": n, "failed": 0}
                    for entity in entities
                }
                doc.update(
                    finishedAt=started + timedelta(milliseconds=duration),
                    durationMs=duration,
                    exitCode=0 if status == "succeeded" else 1,
                    stats={"entities": written},
                    error=None if status == "succeeded" else f"{status}: source exited 1 (connection reset)",
                    outcomeCommitted=True,
                )
        if doc["finishedAt"] is not None:
            # A retention a day longer than the period: none expires (mongoeco purges at once) while seeding.
            doc["expireAt"] = doc["finishedAt"] + timedelta(days=DAYS + 1)
            doc["notifiedAt"] = doc["finishedAt"] + timedelta(seconds=1)
        docs.append(doc)
    return docs


def workspace_executions(rng, workspace: str, jobs: list, count: int, now: datetime, workers) -> list[dict]:
    """`count` executions shared unevenly among `jobs` (some jobs fire far more often than others)."""
    weights = [rng.lognormvariate(0, 1) for _ in jobs]
    shares = [max(1, int(count * weight / sum(weights))) for weight in weights]
    shares[0] += count - sum(shares)
    docs = []
    for job_id, share in zip(jobs, shares, strict=True):
        docs.extend(job_executions(rng, workspace, job_id, share, now, workers))
    return docs


def dataset(count: int, now: datetime) -> tuple[list[dict], list]:
    """The executions to seed, shuffled as concurrent jobs would write them, and ws-main's job ids."""
    from bson import ObjectId

    rng = random.Random(13)
    workers = worker_ids(rng)
    main_jobs = [ObjectId() for _ in range(80)]
    docs = workspace_executions(rng, MAIN, main_jobs, count, now, workers)
    for workspace in OTHERS:
        jobs = [ObjectId() for _ in range(20)]
        docs.extend(workspace_executions(rng, workspace, jobs, count // 40, now, workers))
    docs.sort(key=lambda doc: doc["queuedAt"])
    return docs, main_jobs


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_until_up(session: aiohttp.ClientSession, url: str, deadline_s: float = 60) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            async with session.get(url) as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise SystemExit(f"nothing answered at {url}")


def start_api(url: str, db_name: str, token: str) -> tuple[subprocess.Popen, str]:
    from models.secrets import SecretBox

    port = free_port()
    env = {
        **os.environ,
        "MONGODB_URL": url,
        "MONGODB_DB": db_name,
        "SYNCJOBS_SECRET_KEY": SecretBox.new_key(),
        "SYNCJOBS_BOOTSTRAP_TOKEN": token,
        "LOG_LEVEL": "warning",
    }
    syncjobs = str(Path(sys.executable).with_name("syncjobs"))
    api = subprocess.Popen(
        [syncjobs, "api", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=API_LOG.open("w"),
        stderr=subprocess.STDOUT,
    )
    return api, f"http://127.0.0.1:{port}"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


async def measure(rows: dict, repeats: int) -> dict[str, list[float]]:
    """Each row `repeats` times, the rows taking turns; ms per call. The caller has warmed the connections
    (a warm-up round of every row would cost minutes on mongoeco at 100,000 executions)."""
    times: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(repeats):
        for name, call in rows.items():
            started = time.perf_counter()
            await call()
            times[name].append((time.perf_counter() - started) * 1000)
        print("round:", ", ".join(f"{name} {values[-1]:.0f} ms" for name, values in times.items()))
    return times


def plan_words(reply, keys=("stage", "indexName", "phase", "detail")) -> list[str]:
    """The stage and index names of an explain reply (MongoDB's stages or mongoeco's lineage), in order."""
    if isinstance(reply, dict):
        words = [str(reply[key]) for key in keys if isinstance(reply.get(key), str)]
        return words + [
            word for key, value in reply.items() if key != "indexes" for word in plan_words(value)
        ]
    if isinstance(reply, list):
        return [word for value in reply for word in plan_words(value)]
    return []


async def explain(db, pipeline: list[dict]) -> str:
    """What the server says it does for the pipeline, in one line."""
    from models.collections import JOB_EXECUTIONS

    reply = await db.command("explain", {"aggregate": JOB_EXECUTIONS, "pipeline": pipeline, "cursor": {}})
    return " > ".join(dict.fromkeys(plan_words(reply))) or json.dumps(reply, default=str)[:300]


async def main(count: int, repeats: int) -> None:
    from pymongo import AsyncMongoClient

    from models.collections import JOB_EXECUTIONS, ensure_indexes
    from models.statistics import execution_statistics, period_match, statistics_pipeline

    now = datetime.now(UTC).replace(microsecond=0)
    docs, main_jobs = dataset(count, now)
    total = len(docs)
    server = None
    url = os.environ.get("MONGODB_URL")
    db_name = DB_NAME if not url else f"{DB_NAME}_{os.getpid()}"
    started = time.perf_counter()
    if not url:
        server, report = start_seeded_mongoeco(docs, DB_NAME, JOB_EXECUTIONS)
        url = report["uri"]
        print(
            f"seeded {report['documents']:,} executions in-process in {report['seconds']} s "
            f"({report['msPerDocument']} ms a document, batches of 5,000), mongoeco at {url.split('?')[0]}"
        )
    client = AsyncMongoClient(url, tz_aware=True)
    token = "sjt_" + secrets.token_urlsafe(24)
    api = None
    try:
        db = client[db_name]
        if server is None:
            await ensure_indexes(db)
            for offset in range(0, total, 5000):
                await db[JOB_EXECUTIONS].insert_many(docs[offset : offset + 5000], ordered=False)
            print(f"seeded {total:,} executions over the wire in {time.perf_counter() - started:.1f} s")
        else:
            indexed = time.perf_counter()
            await ensure_indexes(db)
            print(
                "indexes made over the wire (models.collections.ensure_indexes) in "
                f"{time.perf_counter() - indexed:.1f} s"
            )
        assert await db[JOB_EXECUTIONS].count_documents({}) == total, "seeded count differs"
        del docs

        api, base = start_api(url, db_name, token)
        async with aiohttp.ClientSession() as session:
            await wait_until_up(session, f"{base}/readyz", deadline_s=300)
        headers = {"Authorization": f"Bearer {token}"}
        match = period_match(workspace_id=MAIN, now=now, days=DAYS)
        job_match = period_match(workspace_id=MAIN, job_id=main_jobs[0], now=now, days=DAYS)
        in_period = await db[JOB_EXECUTIONS].count_documents(match)
        print(
            f"{total:,} executions in all; {in_period:,} of {MAIN} in the {DAYS}-day period, "
            f"{await db[JOB_EXECUTIONS].count_documents(job_match):,} of its busiest job"
        )
        print(f"explain, workspace: {await explain(db, statistics_pipeline(match))}")
        print(f"explain, one job:   {await explain(db, statistics_pipeline(job_match))}")

        async with aiohttp.ClientSession() as session:

            async def http():
                async with session.get(
                    f"{base}/api/workspaces/{MAIN}/statistics?days={DAYS}", headers=headers
                ) as resp:
                    if resp.status != 200:  # counted and shown; the other rows go on
                        http_errors.append(f"{resp.status} {await resp.text()}")
                        return
                    body = await resp.json()
                    assert body["total"] >= in_period - 1000, body["total"]  # the API's `now` is a bit later

            http_errors: list[str] = []

            async def call():
                body = await execution_statistics(db, workspace_id=MAIN, now=now, days=DAYS)
                assert body["total"] == in_period

            async def aggregation():
                await aggregate(db[JOB_EXECUTIONS], statistics_pipeline(match))

            async def job():
                body = await execution_statistics(
                    db, workspace_id=MAIN, job_id=main_jobs[0], now=now, days=DAYS
                )
                assert body["total"] > 0

            async def baseline_count():
                assert await db[JOB_EXECUTIONS].count_documents(match) == in_period

            async def baseline_find():
                fields = {"_id": 0, "status": 1, "queuedAt": 1, "durationMs": 1, "stats.entities": 1}
                assert len(await db[JOB_EXECUTIONS].find(match, fields).to_list(None)) == in_period

            from models.driver import aggregate

            async with session.get(
                f"{base}/api/workspaces/{MAIN}/statistics?days=1", headers=headers
            ) as resp:
                assert resp.status == 200, await resp.text()  # warm-up: the API's connections and token cache
            await job()  # warm-up: this process's connections

            rows = {
                "http": http,
                "call": call,
                "aggregation": aggregation,
                "job": job,
                "baseline count": baseline_count,
                "baseline find": baseline_find,
            }
            times = await measure(rows, repeats)
        p50 = {name: percentile(values, 0.5) for name, values in times.items()}
        print(f"\n| {f'{repeats} calls each':<16} | p50 ms | p99 ms | / count | / find |")
        print("|---|---|---|---|---|")
        for name, values in times.items():
            print(
                f"| {name:<16} | {p50[name]:8.1f} | {percentile(values, 0.99):8.1f} | "
                f"{p50[name] / p50['baseline count']:6.2f}x | {p50[name] / p50['baseline find']:5.2f}x |"
            )
        if http_errors:
            print(
                f"http: {len(http_errors)} of {repeats} answered an error, the first: {http_errors[0][:300]}"
            )
            print(f"  (the API's log: {API_LOG})")
        verdict = "meets" if p50["http"] <= TARGET_MS and not http_errors else "misses"
        print(
            f"\nGET statistics over {in_period:,} executions: p50 {p50['http']:.0f} ms, "
            f"{verdict} the {TARGET_MS} ms target"
        )
        if server is None:
            await client.drop_database(db_name)
    finally:
        await client.close()
        if api is not None:
            api.terminate()
            api.wait(10)
        if server is not None:
            server.stdin.close()
            server.wait(timeout=30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=100_000, help="of the measured workspace")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.executions, args.repeats))
