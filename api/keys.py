"""Typed application state."""

from aiohttp import web

from api.rate_limit import RateLimiter
from api.token_cache import TokenCache
from models.clock import Clock
from models.connectors import ConnectorCatalog
from models.execution_store import ExecutionStore
from models.secrets import SecretBox
from models.settings import Settings
from models.sync_job_store import SyncJobStore
from models.tokens import Grant, TokenStore

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
DB = web.AppKey("db", object)
JOBS = web.AppKey("jobs", SyncJobStore)
EXECUTIONS = web.AppKey("executions", ExecutionStore)
TOKENS = web.AppKey("tokens", TokenStore)
SECRETS = web.AppKey("secrets", SecretBox)
TOKEN_CACHE = web.AppKey("token_cache", TokenCache)
RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)
CONNECTORS = web.AppKey("connectors", ConnectorCatalog)
# SYNCJOBS_CONNECTORS_FILE's entries, read once when the app is built.
CONFIGURED_CONNECTORS = web.AppKey("configured_connectors", list)
# Per request: the grant of the bearer token, set by the auth middleware.
GRANT = web.RequestKey("grant", Grant)
__all__ = [
    "SETTINGS",
    "CLOCK",
    "DB",
    "JOBS",
    "EXECUTIONS",
    "TOKENS",
    "SECRETS",
    "RATE_LIMITER",
    "CONNECTORS",
    "TOKEN_CACHE",
    "GRANT",
    "Grant",
]
