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
    finished_fields,
    new_execution_document,
)
from models.pagination import after_descending, page
from models.sync_job import OverlapPolicy

MANUAL_SLOT_TRIES = 3


class ExecutionStore:
    def __init__(self, db, *, retention_days: float):
        self._executions = db[JOB_EXECUTIONS]
        self._retention_days = retention_days

    async def active_for_job(self, job_id: ObjectId) -> dict[str, Any] | None:
        """The job's queued or running execution, running first."""
        docs = await self._active_of_job(job_id)
        return docs[0] if docs else None

    async def _active_of_job(self, job_id: ObjectId) -> builtins.list[dict[str, Any]]:
        docs = await self._executions.find({"jobId": job_id, "status": {"$in": ACTIVE_STATUSES}}).to_list(
            None
        )
        docs.sort(key=lambda doc: doc["status"] != ExecutionStatus.RUNNING.value)
        return docs

    async def queue_manual_run(self, job: dict[str, Any], now: datetime) -> dict[str, Any]:
        """Record the intent to run now; the worker picks it up. While another run of the job is queued or
        running, the job's overlap policy decides: `skip` refuses (Conflict), `queue` queues this one
        behind it, `cancel_running` cancels it and queues this one. One manual run waits at most."""
        policy = job.get("overlapPolicy", OverlapPolicy.SKIP.value)
        requested = now
        for _ in range(MANUAL_SLOT_TRIES):
            active = await self._active_of_job(job["_id"])
            waiting_manual = [
                doc
                for doc in active
                if doc["trigger"] == Trigger.MANUAL.value and doc["status"] == ExecutionStatus.QUEUED.value
            ]
            blocking = waiting_manual or (active if policy == OverlapPolicy.SKIP.value else [])
            if blocking:
                raise Conflict(
                    "The job already has a queued or running execution",
                    details={"executionId": str(blocking[0]["_id"]), "status": blocking[0]["status"]},
                )
            if policy == OverlapPolicy.CANCEL_RUNNING.value:
                for doc in active:
                    await self._cancel({"_id": doc["_id"]}, now, reason="replaced by a manual run")
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
        self, workspace_id: str, job_id: ObjectId, *, status: str | None, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        query: dict[str, Any] = {
            "jobId": job_id,
            "workspaceId": workspace_id,
            **after_descending(cursor, "queuedAt"),
        }
        if status:
            query["status"] = status
        docs = (
            await self._executions.find(query)
            .sort([("queuedAt", -1), ("_id", -1)])
            .limit(limit + 1)
            .to_list(None)
        )
        return page(docs, limit, "queuedAt")

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

    async def _cancel(
        self, query: dict[str, Any], now: datetime, reason: str | None = None
    ) -> dict[str, Any] | None:
        queued = await self._executions.find_one_and_update(
            {**query, "status": ExecutionStatus.QUEUED.value},
            {
                "$set": {
                    **finished_fields(ExecutionStatus.CANCELED, now, self._retention_days),
                    "cancelRequestedAt": now,
                    "reason": reason or "canceled before it started",
                }
            },
            return_document=ReturnDocument.AFTER,
        )
        if queued is not None:
            return queued
        # The worker running it reads the request (and its reason) and stops the sync.
        return await self._executions.find_one_and_update(
            {**query, "status": ExecutionStatus.RUNNING.value},
            {"$set": {"cancelRequestedAt": now, "cancelReason": reason}},
            return_document=ReturnDocument.AFTER,
        )
