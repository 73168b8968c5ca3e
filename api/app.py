"""The application factory."""

from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from api.auth import auth_middleware
from api.errors import error_middleware
from api.health import metrics_middleware
from api.keys import CLOCK, DB, EXECUTIONS, JOBS, SECRETS, SETTINGS, TOKENS
from api.request_log import request_log_middleware
from api.routes import add_routes
from models.clock import Clock, SystemClock
from models.collections import ensure_indexes
from models.database import open_database
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
    app = web.Application(
        middlewares=[metrics_middleware, request_log_middleware, error_middleware, auth_middleware],
        client_max_size=settings.api_max_body_bytes,
    )
    app[SETTINGS] = settings
    app[CLOCK] = clock or SystemClock()
    app[SECRETS] = secrets or secret_box_from(settings)
    if db is not None:
        _attach(app, db)
        app.on_startup.append(_prepare)
    else:
        app.cleanup_ctx.append(_own_database)
    add_routes(app)
    return app


def _attach(app: web.Application, db) -> None:
    app[DB] = db
    app[JOBS] = SyncJobStore(db)
    app[EXECUTIONS] = ExecutionStore(db, retention_days=app[SETTINGS].execution_retention_days)
    app[TOKENS] = TokenStore(db)


async def _prepare(app: web.Application) -> None:
    await ensure_indexes(app[DB])
    bootstrap = app[SETTINGS].syncjobs_bootstrap_token
    # An empty value (compose's `${SYNCJOBS_BOOTSTRAP_TOKEN:-}`) installs nothing and says nothing.
    if bootstrap is not None and bootstrap.get_secret_value().strip():
        await app[TOKENS].install(bootstrap.get_secret_value(), name="bootstrap", now=app[CLOCK].now())
        log.info("bootstrap_token_installed")


async def _own_database(app: web.Application) -> AsyncIterator[None]:
    database = open_database(app[SETTINGS])
    _attach(app, database.db)
    await _prepare(app)
    yield
    await database.close()
