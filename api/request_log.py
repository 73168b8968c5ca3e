"""A request id on every request and response, bound into the log context with the ids in the URL."""

import logging
import os
import re
import time

import structlog
from aiohttp import web

log = structlog.get_logger("syncjobs.api")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@web.middleware
async def request_log_middleware(request: web.Request, handler):
    incoming = request.headers.get("X-Request-Id", "")
    # 32 random hex digits, like uuid4().hex at a third of its cost: this runs on every request.
    request_id = incoming if REQUEST_ID.match(incoming) else os.urandom(16).hex()
    context = {"request_id": request_id}
    for key, field in (("workspaceId", "workspace_id"), ("jobId", "job_id"), ("executionId", "execution_id")):
        if key in request.match_info:
            context[field] = request.match_info[key]
    started = time.perf_counter()
    # bind/reset rather than the bound_contextvars context manager: the same effect, a third of the CPU.
    bound = structlog.contextvars.bind_contextvars(**context)
    try:
        response = await handler(request)
        response.headers["X-Request-Id"] = request_id
        # Debug: one line per request drowns everything else at info; errors are logged where they happen.
        # Its fields are worked out only when the line will be written, as it is not at the usual levels.
        if log.is_enabled_for(logging.DEBUG):
            log.debug(
                "request_handled",
                method=request.method,
                path=request.rel_url.path,
                status=response.status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
        return response
    finally:
        structlog.contextvars.reset_contextvars(**bound)
