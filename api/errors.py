"""The one place errors become HTTP: a middleware that answers {"error": {code, message, details}}."""

import structlog
from aiohttp import web
from pymongo.errors import ConnectionFailure, ExecutionTimeout

from models.errors import (
    Conflict,
    Forbidden,
    NotFound,
    StoreUnavailable,
    SyncJobsError,
    Unauthenticated,
    ValidationFailed,
    VersionMismatch,
)

log = structlog.get_logger("syncjobs.api")

STATUS_OF = {
    NotFound: 404,
    ValidationFailed: 422,
    Conflict: 409,
    VersionMismatch: 412,
    Unauthenticated: 401,
    Forbidden: 403,
    StoreUnavailable: 503,
}

HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


class BadRequest(SyncJobsError):
    """The request is malformed."""

    code = "bad_request"


class UnsupportedMediaType(SyncJobsError):
    """Send JSON, with Content-Type: application/json."""

    code = "unsupported_media_type"


class RateLimited(SyncJobsError):
    """Too many requests with this token; try again after Retry-After seconds."""

    code = "rate_limited"

    def __init__(self, message: str | None = None, *, details=None, retry_after: int):
        super().__init__(message, details=details)
        self.headers = {"Retry-After": str(retry_after)}


class QuotaExceeded(Conflict):
    """This workspace has reached a limit."""

    code = "quota_exceeded"


STATUS_OF.update({BadRequest: 400, UnsupportedMediaType: 415, RateLimited: 429})


def error_response(status: int, code: str, message: str, details=None, headers=None) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message, "details": details}}, status=status, headers=headers
    )


def status_of(error: SyncJobsError) -> int:
    for kind in type(error).__mro__:
        if kind in STATUS_OF:
            return STATUS_OF[kind]
    return 400


@web.middleware
async def error_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except SyncJobsError as error:
        status = status_of(error)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else getattr(error, "headers", None)
        return error_response(status, error.code, error.message, error.details, headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        code = HTTP_CODES.get(exc.status, "http_error")
        return error_response(exc.status, code, exc.reason, None, headers)
    except (ConnectionFailure, ExecutionTimeout) as error:
        # The database is down, unreachable or gave up on the command (the driver cancels one it waited
        # on too long): nothing the client did, and worth a retry later.
        log.warning("request_database_unavailable", error=str(error) or type(error).__name__)
        return error_response(
            503,
            StoreUnavailable.code,
            "The database did not answer in time; try again shortly.",
            None,
            {"Retry-After": "5"},
        )
    except Exception:
        log.exception("request_failed")
        return error_response(500, "internal_error", "Internal server error; it has been logged.")
