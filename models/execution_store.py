"""JobExecution documents as the API sees them: history, manual runs and cancel requests."""

from __future__ import annotations

import builtins
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from models.collections import JOB_EXECUTIONS
from models.errors import Conflict, ExecutionNotFound
from models.execution import (
    ACTIVE_STATUSES,
    ExecutionStatus,
    Trigger,
    deleted_job_snapshot,
    finished_fields,
    new_execution_document,
)
from models.pagination import after_descending, page

MANUAL_SLOT_TRIES = 3


class ExecutionStore:
    def __init__(self, db, *, retention_days: float):
        self._executions = db[JOB_EXECUTIONS]
        self._retention_days = retention_days

    async def active_for_job(self, job_id: ObjectId) -> dict[str, Any] | None:
        """The job's queued or running execution, running first."""
        docs = await self._executions.find({"jobId": job_id, "status": {"$in": ACTIVE_STATUSES}}).to_list(
            None
        )
        docs.sort(key=lambda doc: doc["status"] != ExecutionStatus.RUNNING.value)
        return docs[0] if docs else None

    async def queue_manual_run(self, job: dict[str, Any], now: datetime) -> dict[str, Any]:
        """Record the intent to run now; the worker picks it up. Refused while a run is queued or running."""
        requested = now
        for _ in range(MANUAL_SLOT_TRIES):
            active = await self.active_for_job(job["_id"])
            if active is not None:
                raise Conflict(
                    "The job already has a queued or running execution",
                    details={"executionId": str(active["_id"]), "status": active["status"]},
                )
            doc = new_execution_document(job=job, trigger=Trigger.MANUAL, scheduled_for=requested, now=now)
            try:
                await self._executions.insert_one(doc)
                return doc
            except DuplicateKeyError:
                # Either a racing request queued one (found above on the next turn), or a run canceled
                # within the same millisecond holds this slot: the next millisecond is free.
                requested += timedelta(milliseconds=1)
        raise Conflict("The job's manual runs are contended; try again")

    async def list(
        self,
        workspace_id: str,
        job_id: ObjectId | None = None,
        *,
        status: str | None = None,
        trigger: str | None = None,
        queued_from: datetime | None = None,
        queued_to: datetime | None = None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Executions newest first, of one job or (job_id None) of the whole workspace; `queued_from` is
        inclusive, `queued_to` exclusive."""
        query: dict[str, Any] = {"workspaceId": workspace_id, **after_descending(cursor, "queuedAt")}
        if job_id is not None:
            query["jobId"] = job_id
        if status:
            query["status"] = status
        if trigger:
            query["trigger"] = trigger
        window = {
            op: moment for op, moment in (("$gte", queued_from), ("$lt", queued_to)) if moment is not None
        }
        if window:
            query["queuedAt"] = window
        docs = (
            await self._executions.find(query)
            .sort([("queuedAt", -1), ("_id", -1)])
            .limit(limit + 1)
            .to_list(None)
        )
        return page(docs, limit, "queuedAt")

    async def any_for_job(self, workspace_id: str, job_id: ObjectId) -> bool:
        """Whether history of this job is still kept (it may outlive the job until retention ends)."""
        doc = await self._executions.find_one({"workspaceId": workspace_id, "jobId": job_id}, {"_id": 1})
        return doc is not None

    async def keep_deleted_job(self, job: dict[str, Any], now: datetime) -> None:
        """Stamp the deleted job's last state on each of its executions, so its history explains itself."""
        await self._executions.update_many(
            {"jobId": job["_id"], "workspaceId": job["workspaceId"]},
            {"$set": {"job": deleted_job_snapshot(job, now)}},
        )

    async def get(self, workspace_id: str, job_id: ObjectId, execution_id: ObjectId) -> dict[str, Any]:
        doc = await self._executions.find_one(
            {"_id": execution_id, "jobId": job_id, "workspaceId": workspace_id}
        )
        if doc is None:
            raise ExecutionNotFound(details={"id": str(execution_id)})
        return doc

    async def request_cancel(
        self, workspace_id: str, job_id: ObjectId, execution_id: ObjectId, now: datetime
    ):
        """A queued execution ends as canceled at once; a running one gets a request the worker acts on."""
        doc = await self._cancel({"_id": execution_id, "jobId": job_id, "workspaceId": workspace_id}, now)
        if doc is not None:
            return doc
        current = await self.get(workspace_id, job_id, execution_id)
        raise Conflict(
            "The execution has already finished",
            details={"executionId": str(execution_id), "status": current["status"]},
        )

    async def cancel_active_for_job(self, job_id: ObjectId, now: datetime) -> builtins.list[str]:
        """Cancel whatever of the job is queued or running (its job is being deleted); returns their ids."""
        ids = []
        while (doc := await self._cancel({"jobId": job_id, "cancelRequestedAt": None}, now)) is not None:
            ids.append(str(doc["_id"]))
        return ids

    async def _cancel(self, query: dict[str, Any], now: datetime) -> dict[str, Any] | None:
        queued = await self._executions.find_one_and_update(
            {**query, "status": ExecutionStatus.QUEUED.value},
            {
                "$set": {
                    **finished_fields(ExecutionStatus.CANCELED, now, self._retention_days),
                    "cancelRequestedAt": now,
                    "reason": "canceled before it started",
                }
            },
            return_document=ReturnDocument.AFTER,
        )
        if queued is not None:
            return queued
        return await self._executions.find_one_and_update(
            {**query, "status": ExecutionStatus.RUNNING.value},
            {"$set": {"cancelRequestedAt": now}},
            return_document=ReturnDocument.AFTER,
        )
