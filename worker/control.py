"""The worker's side of pausing: a launch of a paused workspace (or of anything while the whole scheduler is
paused) ends `skipped` with reason `paused`, so the history says why nothing ran. Resuming replays nothing:
the skipped slots stay skipped."""

from datetime import datetime, timedelta
from typing import Any

import structlog

from models.clock import Clock
from models.execution import ExecutionStatus
from models.execution_store import ExecutionStore
from models.scheduler_control import PAUSED_REASON, SchedulerControl, paused_scope

log = structlog.get_logger("syncjobs.worker")


# How old the pause state a launch reads may be: launches within this share one read, and a pause reaches
# every worker's launches within it.
PAUSES_MAX_AGE = timedelta(seconds=1)


class PauseGate:
    """Asked once right before each launch (the launcher's only pause hook)."""

    def __init__(self, db, *, store: ExecutionStore, clock: Clock):
        self._control = SchedulerControl(db)
        self._store = store
        self._clock = clock
        self._paused: frozenset[str] = frozenset()
        self._read_at: datetime | None = None

    async def _paused_ids(self) -> frozenset[str]:
        now = self._clock.now()
        if self._read_at is None or now - self._read_at >= PAUSES_MAX_AGE or now < self._read_at:
            self._paused = await self._control.paused_ids()
            self._read_at = now
        return self._paused

    async def skipped(self, execution: dict[str, Any]) -> bool:
        """True when the execution may not run because of a pause; it is then recorded skipped."""
        scope = paused_scope(await self._paused_ids(), execution["workspaceId"])
        if scope is None:
            return False
        await self._store.end_unstarted(
            execution["_id"], ExecutionStatus.SKIPPED, PAUSED_REASON, self._clock.now(), pausedBy=scope
        )
        log.info("execution_skipped_paused", paused_by=scope)
        return True
