"""The long-running processes: the worker alone, and `dev` (API + worker + demo on one database handle)."""

import asyncio
import signal
import sys

import structlog
from aiohttp import web

from api.app import create_app
from executor.runner import SubprocessRunner
from models.clock import SystemClock
from models.collections import ensure_indexes
from models.database import open_database
from models.secrets import SecretBox, secret_box_from
from models.settings import Settings
from syncjobs.demo import WORKSPACE, add_demo_routes, seed_demo
from worker.operations import WorkerOperations, run_with_operations
from worker.scheduler import Scheduler

log = structlog.get_logger("syncjobs")


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT: stop firing, let runs finish within the grace, exit 0."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def run_worker(settings: Settings) -> int:
    database = open_database(settings)
    if database.in_memory:
        log.warning("worker_on_in_memory_database", hint="set MONGODB_URL; only `syncjobs dev` shares memory")
    try:
        await ensure_indexes(database.db)
        clock = SystemClock()
        secrets = secret_box_from(settings)
        scheduler = Scheduler(
            db=database.db,
            runner=SubprocessRunner(database.db, secrets=secrets, settings=settings, clock=clock),
            clock=clock,
            settings=settings,
        )
        operations = WorkerOperations(scheduler, database.db, clock=clock, settings=settings, secrets=secrets)
        await run_with_operations(scheduler, operations, stop_on_signals())
    finally:
        await database.close()
    return 0


async def run_dev(settings: Settings, *, host: str, port: int) -> int:
    database = open_database(settings)
    if settings.syncjobs_secret_key is None and database.in_memory:
        secrets = SecretBox(SecretBox.new_key())  # nothing outlives this process, so neither need the key
    else:
        secrets = secret_box_from(settings)
    clock = SystemClock()
    app = create_app(settings, db=database.db, clock=clock, secrets=secrets)
    add_demo_routes(app, clock)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bootstrap = settings.syncjobs_bootstrap_token
        demo = await seed_demo(
            database.db,
            clock=clock,
            secrets=secrets,
            base_url=f"http://{host}:{port}/demo",
            token=bootstrap.get_secret_value() if bootstrap else None,
        )
        print_welcome(host, port, demo, in_memory=database.in_memory)
        scheduler = Scheduler(
            db=database.db,
            runner=SubprocessRunner(database.db, secrets=secrets, settings=settings, clock=clock),
            clock=clock,
            settings=settings,
        )
        operations = WorkerOperations(scheduler, database.db, clock=clock, settings=settings, secrets=secrets)
        await run_with_operations(scheduler, operations, stop_on_signals())
    finally:
        await runner.cleanup()
        await database.close()
    return 0


def print_welcome(host: str, port: int, demo: dict, *, in_memory: bool) -> None:
    base = f"http://{host}:{port}/api/workspaces/{WORKSPACE}/sync-jobs"
    job_id = demo["job"]["_id"]
    auth = f'-H "Authorization: Bearer {demo["token"]}"'
    lines = [
        "",
        f"syncjobs is running on http://{host}:{port} ({'in-memory database' if in_memory else 'MongoDB'})",
        f"  workspace: {WORKSPACE}",
        f"  token:     {demo['token']}",
        f"  job:       {job_id} (syncs the demo shop every minute)",
        "",
        f"  curl {auth} {base}",
        f"  curl {auth} -X POST {base}/{job_id}/run",
        f"  curl {auth} {base}/{job_id}/executions",
        f"  curl {auth} {base}/{job_id}/status",
        "",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
