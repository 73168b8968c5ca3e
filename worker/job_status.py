"""The worker's writes to a job: status fields only, never `version` or `updatedAt`, so they never
read as a user's edit and never reschedule the job."""

from datetime import datetime
from typing import Any

from bson import ObjectId

from models.collections import SYNC_JOBS
from models.execution import ExecutionStatus

MAX_ERROR_CHARS = 2000


class JobStatusWriter:
    def __init__(self, db):
        self._jobs = db[SYNC_JOBS]

    async def schedule_applied(
        self, job_ids: list[ObjectId], version: int, next_run_at: datetime | None, now: datetime
    ):
        """Record that the schedule reflects `version` of these jobs, and when they fire next."""
        await self._jobs.update_many(
            {"_id": {"$in": job_ids}, "version": version},
            {"$set": {"scheduleAppliedVersion": version, "scheduleAppliedAt": now, "nextRunAt": next_run_at}},
        )

    async def next_run(self, job_ids: list[ObjectId], next_run_at: datetime | None) -> None:
        await self._jobs.update_many({"_id": {"$in": job_ids}}, {"$set": {"nextRunAt": next_run_at}})

    async def record_outcome(
        self,
        job_id: ObjectId,
        *,
        status: ExecutionStatus,
        started_at: datetime | None,
        finished_at: datetime,
        duration_ms: int | None,
        error: str | None,
        cursors: dict[str, Any],
    ) -> None:
        job = await self._jobs.find_one({"_id": job_id}, {"runCount": 1, "avgDurationMs": 1})
        if job is None:
            return  # deleted while it ran
        succeeded = status == ExecutionStatus.SUCCEEDED
        update: dict[str, Any] = {
            "$set": {
                "lastRunAt": started_at or finished_at,
                "lastRunStatus": status.value,
                "lastError": None if succeeded else (error or status.value)[:MAX_ERROR_CHARS],
            },
            "$inc": {"runCount": 1, "failureCount": 0 if succeeded else 1},
        }
        if succeeded:
            update["$set"]["lastSuccessAt"] = finished_at
            update["$set"]["consecutiveFailures"] = 0
            for entity, cursor in cursors.items():
                update["$set"][f"cursors.{entity}"] = cursor
        else:
            update["$inc"]["consecutiveFailures"] = 1
        if duration_ms is not None:
            # A running mean over every run with a duration.
            count = job.get("runCount") or 0
            average = job.get("avgDurationMs") or 0.0
            update["$set"]["avgDurationMs"] = round((average * count + duration_ms) / (count + 1), 1)
        await self._jobs.update_one({"_id": job_id}, update)
