"""The long-running processes: the worker alone, and `dev` (API + worker + demo on one database handle)."""

import asyncio
import os
import pwd
import signal
import sys

import structlog
from aiohttp import web

from api.app import create_app
from executor.runner import SubprocessRunner
from executor.sandbox import make_non_dumpable, source_user_problem
from models.clock import SystemClock
from models.collections import ensure_indexes
from models.database import open_database, open_reachable
from models.secrets import SecretBox, secret_box_from
from models.settings import Settings
from syncjobs.demo import WORKSPACE, add_demo_routes, allow_demo_shop, seed_demo
from worker.change_feed import open_feed
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


async def harden_worker(settings: Settings) -> str | None:
    """Once, before any source starts: sources of our own user cannot read this process's memory or
    environment through /proc; and a SOURCE_USER that cannot start the HTTP connector is said at once,
    not in every run's error (and returned)."""
    if not make_non_dumpable():
        log.warning("worker_dumpable", hint="prctl(PR_SET_DUMPABLE) is unavailable on this platform")
    # The connector's own import, as the source user: the interpreter and this checkout must be readable.
    problem = await source_user_problem(
        settings.source_user, [sys.executable, "-c", "import executor.sync_cli"]
    )
    if problem:
        log.warning(
            "source_user_cannot_run_http_connector",
            problem=problem,
            hint="install Python and syncjobs where SOURCE_USER can read them (pyenv under /root is not)",
        )
    return problem


async def harden_dev(settings: Settings) -> Settings:
    """`dev` is a one-machine demo, often started as root from a checkout only root can read: where the
    default SOURCE_USER cannot start the connector, its sources run as this process's user instead, and it
    says so. An explicit SOURCE_USER is kept, and `syncjobs worker` never falls back."""
    problem = await harden_worker(settings)
    if problem is None or "source_user" in settings.model_fields_set:
        return settings
    user = pwd.getpwuid(os.geteuid()).pw_name
    log.warning(
        "dev_sources_run_as_this_user",
        user=user,
        reason=problem,
        hint="set SOURCE_USER to a user that can run this Python to keep sources apart from the worker",
    )
    return settings.model_copy(update={"source_user": user})


async def run_worker(settings: Settings) -> int:
    await harden_worker(settings)
    secrets = secret_box_from(settings)
    database = await open_reachable(settings)
    if database.in_memory:
        log.warning("worker_on_in_memory_database", hint="set MONGODB_URL; only `syncjobs dev` shares memory")
    try:
        await ensure_indexes(database.db)
        clock = SystemClock()
        if settings.reload_mode == "change_streams":
            # A server without them is said once, here, rather than at every election, each ending a term.
            await open_feed(
                database.db,
                clock=clock,
                poll_seconds=settings.poll_interval_seconds,
                resync_seconds=settings.resync_interval_seconds,
                since=None,
                mode="change_streams",
            )
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
    settings = await harden_dev(settings)
    settings = allow_demo_shop(settings, host)
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
        demo = await seed_demo(
            database.db, clock=clock, secrets=secrets, base_url=f"http://{host}:{port}/demo"
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
    # The token is printed once; the examples read it from $TOKEN.
    auth = '-H "Authorization: Bearer $TOKEN"'
    lines = [
        "",
        f"syncjobs is running on http://{host}:{port} ({'in-memory database' if in_memory else 'MongoDB'})",
        f"  workspace: {WORKSPACE}",
        f"  token:     {demo['token']}",
        f"  job:       {job_id} (syncs the demo shop every minute)",
        "",
        "  export TOKEN=<the token above>   # an owner token of the demo workspace",
        f"  curl {auth} {base}",
        f"  curl {auth} -X POST {base}/{job_id}/run",
        f"  curl {auth} {base}/{job_id}/executions",
        f"  curl {auth} {base}/{job_id}/status",
        "",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
