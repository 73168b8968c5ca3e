"""`syncjobs api | worker | dev | token create | sync`: flags, settings, logging, then run."""

import argparse
import asyncio
import errno
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import ValidationError

from models.database import DatabaseRequired
from models.errors import SyncJobsError
from models.logs import configure_logging
from models.settings import Settings
from models.tokens import Role


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="syncjobs", description="Scheduled data-sync jobs kept in MongoDB.")
    commands = parser.add_subparsers(dest="command", required=True)

    for name, help_text in (
        ("api", "serve the HTTP API"),
        ("dev", "API + worker in one process, with a demo"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--host", default=settings.api_host, help="default: API_HOST or 127.0.0.1")
        command.add_argument("--port", type=int, default=settings.api_port, help="default: API_PORT or 8080")

    worker = commands.add_parser("worker", help="run the scheduler (several replicas may run; one leads)")
    for command in (commands.choices["api"], worker):
        command.add_argument(
            "--in-memory",
            action="store_true",
            help="run without MONGODB_URL on a private in-memory database (nothing is kept or shared)",
        )
    worker.add_argument(
        "--status-port",
        type=int,
        default=settings.worker_status_port,
        help="serve /healthz, /readyz and /metrics here (default: WORKER_STATUS_PORT, or none)",
    )

    token = commands.add_parser("token", help="manage API tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    create = token_commands.add_parser("create", help="create a token and print it once")
    scope = create.add_mutually_exclusive_group(required=True)
    scope.add_argument("--workspace", help="the workspace the token is valid for")
    scope.add_argument("--admin", action="store_true", help="valid for every workspace")
    create.add_argument("--name", default="cli")
    create.add_argument(
        "--role",
        default="owner",
        choices=[role.value for role in Role],
        help="with --workspace; default owner",
    )

    commands.add_parser("sync", help="the built-in HTTP connector: spec on stdin, JSON lines on stdout")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        return run(argv)
    except ValidationError as error:
        from syncjobs.config_errors import explain

        sys.stderr.write("\n".join(explain(error)) + "\n")
        return 2
    except SyncJobsError as error:
        # Configuration mistakes (a missing or malformed key, say) end with a sentence, not a traceback.
        sys.stderr.write(f"syncjobs: {error.message}\n")
        return 2


def run(argv: list[str] | None) -> int:
    settings = Settings()
    args = build_parser(settings).parse_args(argv)
    if args.command == "sync":
        from executor.sync_cli import run_sync_process

        return run_sync_process(sys.stdin, sys.stdout)
    if args.command in ("api", "worker") and not settings.mongodb_url and not args.in_memory:
        raise DatabaseRequired()
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    if args.command == "api":
        from aiohttp import web

        from api.app import create_app, log_listening

        with port_in_use_said(args.host, args.port):
            web.run_app(
                create_app(settings),
                host=args.host,
                port=args.port,
                print=log_listening(args.host, args.port),
            )
        return 0
    if args.command == "token":
        return asyncio.run(create_token(settings, args))
    if args.command == "worker":
        from syncjobs.processes import run_worker

        settings = settings.model_copy(update={"worker_status_port": args.status_port})
        return asyncio.run(run_worker(settings))
    if args.command == "dev":
        from syncjobs.processes import run_dev

        with port_in_use_said(args.host, args.port):
            return asyncio.run(run_dev(settings, host=args.host, port=args.port))
    return 2


class PortInUse(SyncJobsError):
    """The API's port is taken."""


@contextmanager
def port_in_use_said(host: str, port: int) -> Iterator[None]:
    """A busy port is one line naming the knobs that move it, not a traceback."""
    try:
        yield
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        raise PortInUse(f"{host}:{port} is in use: choose another port with --port or API_PORT") from error


async def create_token(settings: Settings, args: argparse.Namespace) -> int:
    from models.clock import SystemClock
    from models.collections import ensure_indexes
    from models.database import open_reachable
    from models.tokens import TokenStore

    if not settings.mongodb_url:
        sys.stderr.write("MONGODB_URL is unset: a token in the in-memory database dies with this command.\n")
        return 2
    database = await open_reachable(settings)
    try:
        await ensure_indexes(database.db)
        token, _ = await TokenStore(database.db).issue(
            workspace_id=args.workspace,
            name=args.name,
            admin=args.admin,
            role=args.role,
            now=SystemClock().now(),
        )
    finally:
        await database.close()
    sys.stdout.write(token + "\n")
    return 0
