"""Each worker's heartbeat in `workers`: who it is, whether it leads, what it runs. Operators read it from the
mongo shell (db.workers.find()) and admins through GET /api/admin/scheduler."""

import os
import socket
from datetime import datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import structlog
from pymongo.errors import PyMongoError

from models.clock import Clock
from models.collections import JOB_EXECUTIONS, WORKERS
from models.execution import ExecutionStatus
from models.settings import Settings
from worker import metrics

log = structlog.get_logger("syncjobs.worker")

# A heartbeat document outlives its worker by this many beats before the TTL monitor may delete it.
EXPIRE_AFTER_BEATS = 6


def package_version() -> str:
    try:
        return version("syncjobs")
    except PackageNotFoundError:
        return "unknown"


class Heartbeat:
    """Writes this worker's document every `settings.renew_seconds` and keeps the gauges current."""

    def __init__(self, scheduler, db, *, clock: Clock, settings: Settings):
        self._scheduler = scheduler
        self._workers = db[WORKERS]
        self._executions = db[JOB_EXECUTIONS]
        self._clock = clock
        self.interval = settings.renew_seconds
        self._labels = settings.labels
        self.started_at = clock.now()
        self.last_ok: datetime | None = None

    def document(self, now: datetime) -> dict[str, Any]:
        scheduler = self._scheduler
        lease = scheduler.lease
        return {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "version": package_version(),
            "startedAt": self.started_at,
            "heartbeatAt": now,
            "expireAt": now + timedelta(seconds=self.interval * EXPIRE_AFTER_BEATS),
            "leading": scheduler.leading.is_set(),
            "term": lease.term if lease is not None else None,
            "reloadMode": getattr(scheduler, "reload_mode", None),
            "jobsLoaded": len(scheduler.timetable) if scheduler.leading.is_set() else 0,
            "running": list(scheduler.launcher.running),
            "capacity": scheduler.launcher.capacity,
            "labels": self._labels,
        }

    def set_gauges(self) -> None:
        """The gauges of this worker's own state; also called at every scrape, so they are never stale."""
        scheduler = self._scheduler
        leading = scheduler.leading.is_set() and scheduler.lease is not None
        metrics.LEADER.set(1 if leading else 0)
        metrics.TERM.set(scheduler.lease.term if leading else 0)
        metrics.RUNNING.set(len(scheduler.launcher.running))

    async def beat(self) -> bool:
        """One heartbeat; False (and logged) when the database did not take it."""
        now = self._clock.now()
        doc = self.document(now)
        self.set_gauges()
        try:
            await self._workers.update_one({"_id": self._scheduler.worker_id}, {"$set": doc}, upsert=True)
            if doc["leading"]:
                metrics.QUEUED.set(
                    await self._executions.count_documents({"status": ExecutionStatus.QUEUED.value})
                )
        except PyMongoError as error:
            log.warning("heartbeat_failed", error=str(error))
            return False
        self.last_ok = now
        return True

    def connected(self, now: datetime) -> bool:
        """Whether a heartbeat went through recently (two intervals, so one slow beat is not an outage)."""
        return self.last_ok is not None and (now - self.last_ok).total_seconds() <= 2 * self.interval + 1

    async def remove(self) -> None:
        """A clean stop takes the worker off the list at once rather than after its heartbeat goes stale."""
        try:
            await self._workers.delete_one({"_id": self._scheduler.worker_id})
        except PyMongoError:
            pass  # the TTL index and the readers' staleness check take it off anyway
