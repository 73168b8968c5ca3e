"""The application factory."""

from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from api.auth import auth_middleware
from api.errors import error_middleware
from api.health import metrics_middleware
from api.keys import (
    CLOCK,
    CONFIGURED_CONNECTORS,
    CONNECTORS,
    DB,
    EXECUTIONS,
    JOBS,
    RATE_LIMITER,
    SECRETS,
    SETTINGS,
    TOKEN_CACHE,
    TOKENS,
)
from api.parser_errors import answer_parser_errors_in_json
from api.rate_limit import RateLimiter
from api.request_log import request_log_middleware
from api.routes import add_routes
from api.token_cache import TokenCache
from api.ui import add_dashboard
from models.clock import Clock, SystemClock
from models.collections import ensure_indexes
from models.connectors import ConnectorCatalog, read_connectors_file
from models.database import open_reachable
from models.execution_store import ExecutionStore
from models.secrets import SecretBox, secret_box_from
from models.settings import Settings
from models.sync_job_store import SyncJobStore
from models.tokens import TokenStore

log = structlog.get_logger("syncjobs.api")


def create_app(
    settings: Settings, *, db=None, clock: Clock | None = None, secrets: SecretBox | None = None
) -> web.Application:
    """The API. With `db` given (tests, the in-memory demo) it is used as is and never closed here;
    otherwise the app opens MONGODB_URL at start-up and closes it at cleanup."""
    answer_parser_errors_in_json()
    app = web.Application(
        middlewares=[metrics_middleware, request_log_middleware, error_middleware, auth_middleware],
        client_max_size=settings.api_max_body_bytes,
    )
    app[SETTINGS] = settings
    app[CLOCK] = clock or SystemClock()
    app[SECRETS] = secrets or secret_box_from(settings)
    app[RATE_LIMITER] = RateLimiter(rate=settings.api_rate_per_second, burst=settings.api_rate_burst)
    # Read once at start-up, so a malformed catalog stops the API before it serves.
    app[CONFIGURED_CONNECTORS] = read_connectors_file(settings.syncjobs_connectors_file)
    if db is not None:
        _attach(app, db)
        app.on_startup.append(_prepare)
    else:
        app.cleanup_ctx.append(_own_database)
    add_routes(app)
    add_dashboard(app)
    return app


def log_listening(host: str, port: int):
    """For web.run_app's `print`: called once the socket listens, so the line means the API answers."""

    def say(_banner: str) -> None:
        log.info("api_listening", url=f"http://{host}:{port}")

    return say


def _attach(app: web.Application, db) -> None:
    app[DB] = db
    app[JOBS] = SyncJobStore(db)
    app[EXECUTIONS] = ExecutionStore(db, retention_days=app[SETTINGS].execution_retention_days)
    app[TOKENS] = TokenStore(db, bootstrap=bootstrap_token(app[SETTINGS]))
    app[TOKEN_CACHE] = TokenCache(app[TOKENS], app[CLOCK])
    app[CONNECTORS] = ConnectorCatalog(db, app[CONFIGURED_CONNECTORS])


async def _prepare(app: web.Application) -> None:
    await ensure_indexes(app[DB])
    if await app[TOKENS].forget_stored_bootstrap():
        log.warning("stored_bootstrap_token_deleted", hint="valid only while SYNCJOBS_BOOTSTRAP_TOKEN is set")
    if bootstrap_token(app[SETTINGS]) is not None:
        log.info("bootstrap_token_enabled")


def bootstrap_token(settings: Settings) -> str | None:
    """SYNCJOBS_BOOTSTRAP_TOKEN, or None: an empty value (compose's `${SYNCJOBS_BOOTSTRAP_TOKEN:-}`) is
    none."""
    value = settings.syncjobs_bootstrap_token
    return value.get_secret_value() if value is not None and value.get_secret_value().strip() else None


async def _own_database(app: web.Application) -> AsyncIterator[None]:
    database = await open_reachable(app[SETTINGS])
    _attach(app, database.db)
    await _prepare(app)
    yield
    await database.close()
