"""What a dashboard reads about a workspace's jobs: each job's recent runs, and a cheap marker that changes
whenever anything a job row shows may have changed."""

import asyncio
import hashlib
from typing import Any

from bson import ObjectId

from models.collections import JOB_EXECUTIONS, SYNC_JOBS
from models.execution import ACTIVE_STATUSES

# The job fields a row shows that the worker or an edit changes.
WATCHED_JOB_FIELDS = (
    "version",
    "enabled",
    "lastRunAt",
    "lastRunStatus",
    "nextRunAt",
    "scheduleAppliedVersion",
)
RUN_FIELDS = {
    "status": 1,
    "trigger": 1,
    "queuedAt": 1,
    "startedAt": 1,
    "finishedAt": 1,
    "durationMs": 1,
    "error": 1,
}


class JobActivity:
    def __init__(self, db):
        self._jobs = db[SYNC_JOBS]
        self._executions = db[JOB_EXECUTIONS]

    async def recent_runs(
        self, workspace_id: str, job_ids: list[ObjectId], count: int
    ) -> dict[ObjectId, list[dict[str, Any]]]:
        """The newest `count` executions of each job, newest first (one indexed query per job)."""

        async def of(job_id: ObjectId) -> list[dict[str, Any]]:
            return (
                await self._executions.find({"jobId": job_id, "workspaceId": workspace_id}, RUN_FIELDS)
                .sort([("queuedAt", -1), ("_id", -1)])
                .limit(count)
                .to_list(None)
            )

        runs = await asyncio.gather(*(of(job_id) for job_id in job_ids))
        return dict(zip(job_ids, runs, strict=True))

    async def marker(self, workspace_id: str, *, jobs_shown: int) -> str:
        """Changes when one of the first `jobs_shown` jobs is added, removed, edited or ends a run, or a run
        of the workspace is queued, starts or ends. Two small indexed reads, so it can run every second."""
        jobs = (
            await self._jobs.find({"workspaceId": workspace_id}, dict.fromkeys(WATCHED_JOB_FIELDS, 1))
            .sort("_id", 1)
            .limit(jobs_shown)
            .to_list(None)
        )
        active = (
            await self._executions.find(
                {"workspaceId": workspace_id, "status": {"$in": ACTIVE_STATUSES}}, {"status": 1}
            )
            .sort("_id", 1)
            .to_list(None)
        )
        digest = hashlib.sha256()
        for doc in (*jobs, *active):
            digest.update(repr(sorted(doc.items())).encode())
        return digest.hexdigest()
