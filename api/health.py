"""Liveness, readiness and the API's Prometheus metrics (request latency by route and status)."""

import asyncio
import time

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Histogram, generate_latest

from api.keys import DB

log = structlog.get_logger("syncjobs.api")

PING_TIMEOUT_SECONDS = 2
REQUEST_LATENCY = Histogram(
    "syncjobs_api_request_duration_seconds",
    "API request latency, by method, route template and status",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def route_of(request: web.Request) -> str:
    """The route template, never the raw path: ids in paths would make a series per document."""
    route = request.match_info.route
    resource = route.resource if route is not None else None
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def metrics_middleware(request: web.Request, handler):
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        REQUEST_LATENCY.labels(request.method, route_of(request), str(status)).observe(
            time.perf_counter() - started
        )


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready while the database answers a ping; asked anew each time, so it recovers by itself."""
    db = request.app.get(DB)
    if db is None:
        return web.json_response(
            {"status": "unavailable", "reason": "the database is not open yet"}, status=503
        )
    try:
        await asyncio.wait_for(db.command("ping"), PING_TIMEOUT_SECONDS)
    except Exception as error:  # whatever the driver raises, the answer is the same: not ready
        log.warning("readiness_ping_failed", error=str(error) or type(error).__name__)
        return web.json_response(
            {"status": "unavailable", "reason": "the database did not answer a ping"}, status=503
        )
    return web.json_response({"status": "ready"})


async def metrics(_request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})
