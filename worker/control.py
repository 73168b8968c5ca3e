"""The worker's side of pausing: a launch of a paused workspace (or of anything while the whole scheduler is
paused) ends `skipped` with reason `paused`, so the history says why nothing ran. Resuming replays nothing:
the skipped slots stay skipped."""

from typing import Any

import structlog

from models.clock import Clock
from models.collections import JOB_EXECUTIONS
from models.execution import ExecutionStatus, finished_fields
from models.scheduler_control import PAUSED_REASON, SchedulerControl
from models.settings import Settings

log = structlog.get_logger("syncjobs.worker")


class PauseGate:
    """Asked once right before each launch (the launcher's only pause hook)."""

    def __init__(self, db, *, clock: Clock, settings: Settings):
        self._control = SchedulerControl(db)
        self._executions = db[JOB_EXECUTIONS]
        self._clock = clock
        self._retention_days = settings.execution_retention_days

    async def skipped(self, execution: dict[str, Any]) -> bool:
        """True when the execution may not run because of a pause; it is then recorded skipped."""
        scope = await self._control.paused_by(execution["workspaceId"])
        if scope is None:
            return False
        now = self._clock.now()
        await self._executions.update_one(
            {"_id": execution["_id"], "status": ExecutionStatus.QUEUED.value},
            {
                "$set": {
                    **finished_fields(ExecutionStatus.SKIPPED, now, self._retention_days),
                    "reason": PAUSED_REASON,
                    "pausedBy": scope,
                }
            },
        )
        log.info("execution_skipped_paused", paused_by=scope)
        return True
