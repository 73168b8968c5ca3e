"""What runs beside the scheduler in every worker process: the heartbeat, the notifier (metrics and webhook
events of finished executions), webhook delivery, and the status server. None of it is in the scheduling
path: each is a task of its own, so a slow database write or a dead webhook endpoint never delays a fire."""

import asyncio

import structlog
from aiohttp import web

from models.clock import Clock
from models.secrets import SecretBox
from models.settings import Settings
from worker.heartbeat import Heartbeat
from worker.naps import nap
from worker.status_server import start_status_server, status_app

log = structlog.get_logger("syncjobs.worker")


class WorkerOperations:
    def __init__(self, scheduler, db, *, clock: Clock, settings: Settings, secrets: SecretBox | None = None):
        from worker.notifier import Notifier
        from worker.webhook_delivery import Deliverer

        self._scheduler = scheduler
        self._clock = clock
        self._settings = settings
        self.heartbeat = Heartbeat(scheduler, db, clock=clock, settings=settings)
        self.notifier = Notifier(db, clock=clock, settings=settings)
        self.deliverer = Deliverer(db, clock=clock, settings=settings, secrets=secrets)
        self.status_port: int | None = None
        self._status_runner: web.AppRunner | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set; then the heartbeat document is removed and the status server closed."""
        if self._settings.worker_status_port is not None:
            self._status_runner, self.status_port = await start_status_server(
                status_app(self._scheduler, self.heartbeat, self._clock),
                self._settings.worker_status_host,
                self._settings.worker_status_port,
            )
            log.info("status_server_started", port=self.status_port)
        loops = [
            asyncio.create_task(
                self._every(self.heartbeat.interval, self.heartbeat.beat, stop), name="heartbeat"
            ),
            asyncio.create_task(
                self._every(self._settings.poll_interval_seconds, self.notifier.run_once, stop),
                name="notifier",
            ),
            asyncio.create_task(self.deliverer.run(stop), name="webhook-delivery"),
        ]
        try:
            await stop.wait()
        finally:
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await self.deliverer.close()
            await self.heartbeat.remove()
            if self._status_runner is not None:
                await self._status_runner.cleanup()

    async def _every(self, seconds: float, step, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except Exception:
                # A failing step is retried at the next interval; it must never end the loop.
                log.exception("operations_step_failed", step=getattr(step, "__qualname__", str(step)))
            await nap(self._clock, stop, seconds, consume=False)


async def run_with_operations(scheduler, operations: WorkerOperations, stop: asyncio.Event) -> None:
    """Run the scheduler until `stop`; the operations outlive it by the shutdown, so the heartbeat keeps
    saying what still runs while runs drain."""
    done = asyncio.Event()
    task = asyncio.create_task(operations.run(done), name="operations")
    try:
        await scheduler.run(stop)
    finally:
        done.set()
        await task
