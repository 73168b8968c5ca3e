"""The worker's own small HTTP server (--status-port): /healthz, /readyz and /metrics."""

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from models.clock import Clock
from worker.heartbeat import Heartbeat


def status_app(scheduler, heartbeat: Heartbeat, clock: Clock) -> web.Application:
    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "workerId": scheduler.worker_id})

    async def readyz(_request: web.Request) -> web.Response:
        # Ready means connected: its last heartbeat reached the database. Leading or standing by are both
        # ready states: a standby is what takes over.
        role = "leader" if scheduler.leading.is_set() else "standby"
        if not heartbeat.connected(clock.now()):
            return web.json_response(
                {"status": "unavailable", "role": role, "reason": "the database did not take a heartbeat"},
                status=503,
            )
        return web.json_response({"status": "ready", "role": role})

    async def metrics(_request: web.Request) -> web.Response:
        heartbeat.set_gauges()
        return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


async def start_status_server(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve `app`; returns the runner (the caller cleans it up) and the port bound (port 0 picks one)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    return runner, bound
