"""The one home of JobExecution records: every write of an execution's life (queue, claim, start, finish,
skip, miss, abandon, retry, cancel) and the reads that drive them. The API queues manual runs, cancels and
reads history here; the worker does everything else here."""

from __future__ import annotations

import builtins
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError

from models.clock import to_bson_precision
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
from models.scheduler_control import PAUSED_REASON, Paused, SchedulerControl, paused_scope
from models.sync_job import OverlapPolicy

MANUAL_SLOT_TRIES = 3
DUPLICATE_KEY = 11000
# What a dispatch reads of an execution (a launch, or a cancel request); the claim returns the whole document.
LAUNCH_FIELDS = {
    "status": 1,
    "cancelReason": 1,
    "requiredLabel": 1,
    "jobId": 1,
    "workspaceId": 1,
    "trigger": 1,
    "scheduledFor": 1,
    "attempt": 1,
    "firedTerm": 1,
    "runAfter": 1,
}


class ExecutionStore:
    """Pauses hold without a read at each launch: a pause ends every queued run of its scope at once
    (`skip_queued_while_paused`, right after the pause is written), and each write that leaves a run queued
    reads the pauses after it (`_unless_paused`). Either that read sees the pause, or the pause was written
    later and its sweep finds the run still queued. So nothing queued outlives a pause, and no worker reads
    pauses before it launches; a run claimed in the moment between a pause's two writes still starts."""

    def __init__(self, db, *, retention_days: float):
        self._executions = db[JOB_EXECUTIONS]
        self._control = SchedulerControl(db)
        self._retention_days = retention_days

    def _finished(self, status: ExecutionStatus, now: datetime) -> dict[str, Any]:
        return finished_fields(status, now, self._retention_days)

    # -- queue ---------------------------------------------------------------------------------------

    async def queue(self, docs: builtins.list[dict[str, Any]]) -> builtins.list[dict[str, Any]]:
        """Insert queued executions (or finished records); returns those written. One that exists already
        (another leader wrote that slot, or this very insert is a retry) is not an error: the unique index on
        (job, slot, attempt) makes a second insert harmless."""
        if not docs:
            return []
        try:
            await self._executions.insert_many(docs, ordered=False)
            written = docs
        except BulkWriteError as error:
            errors = error.details.get("writeErrors", [])
            if any(item.get("code") != DUPLICATE_KEY for item in errors):
                raise
            duplicates = {item["index"] for item in errors}
            written = [doc for index, doc in enumerate(docs) if index not in duplicates]
        if written:
            await self._unless_paused(written, max(doc["queuedAt"] for doc in written))
        return written

    def missed_record(
        self, job: dict[str, Any], *, count: int, first: datetime, last: datetime, now: datetime
    ) -> dict[str, Any]:
        """One skipped record for `count` slots no leader fired, from `first` to `last`.

        It takes its first slot's key, as a fired record of that slot would (job, slot, attempt 1), so the
        two exclude each other: a deposed leader that wakes from a pause and inserts the slot it was firing
        lands on the range (its fence holds its other writes, but an insert has no filter), and a range
        written after such an insert is refused (`missed_ranges_written` writes it on from the next slot).
        Ranges recorded before this carry attempt 0."""
        record = new_execution_document(job=job, trigger=Trigger.SCHEDULE, scheduled_for=first, now=now)
        record.update(self._finished(ExecutionStatus.SKIPPED, now))
        record["reason"] = "missed"
        record["missed"] = {"count": count, "firstSlot": first, "lastSlot": last}
        return record

    async def queue_retry(
        self, execution: dict[str, Any], job: dict[str, Any], *, now: datetime, run_after: datetime
    ) -> dict[str, Any] | None:
        """The next attempt of a failed execution; None if whoever finished this attempt first queued it, or
        if a pause ended it as soon as it was queued (recorded skipped)."""
        retry = new_execution_document(
            job=job,
            trigger=Trigger.RETRY,
            scheduled_for=execution["scheduledFor"],
            now=now,
            attempt=execution["attempt"] + 1,
            run_after=run_after,
        )
        retry["retryOf"] = execution["_id"]
        try:
            await self._executions.insert_one(retry)
        except DuplicateKeyError:
            return None
        if await self._unless_paused([retry], now):
            return None
        return retry

    # -- claim, start, run ---------------------------------------------------------------------------

    async def claim(
        self, execution: dict[str, Any], *, owner: str, now: datetime
    ) -> tuple[bool, dict[str, Any] | None]:
        """Start an execution whose job lock this worker has just taken: `queued -> running`, naming this
        worker, in one atomic update. `execution` is the queued execution as read (its `_id` and whichever
        fields the caller read: none of them change while it is queued). Returns (True, the running
        execution: those fields, now running) when won; (True, None) when it was canceled or is no longer
        queued (another worker started it); (False, None) when another execution of the job is still
        recorded `running` (the `one_running_per_job` guard): its lock lapsed, the caller ends it.

        An update, not a find-and-modify: the caller has the document already, and the in-memory database
        reads the collection twice more for a find-and-modify."""
        started = {
            "status": ExecutionStatus.RUNNING.value,
            "startedAt": to_bson_precision(now),
            "workerId": owner,
        }
        try:
            result = await self._executions.update_one(
                {"_id": execution["_id"], "status": ExecutionStatus.QUEUED.value, "cancelRequestedAt": None},
                {"$set": started},
            )
        except DuplicateKeyError:
            return False, None
        if result.modified_count == 0:
            return True, None
        return True, {**execution, **started}

    async def hand_back(self, execution: dict[str, Any], *, owner: str, now: datetime) -> None:
        """A claim that went over its workspace's fleet-wide cap goes back to the queue, as it was; one that
        was asked to stop meanwhile ends canceled instead (queued, nothing would ever claim it)."""
        mine = {"_id": execution["_id"], "status": ExecutionStatus.RUNNING.value, "workerId": owner}
        back = await self._executions.update_one(
            {**mine, "cancelRequestedAt": None},
            {"$set": {"status": ExecutionStatus.QUEUED.value}, "$unset": {"startedAt": "", "workerId": ""}},
        )
        if back.modified_count == 0:
            await self._executions.update_one(
                mine,
                {
                    "$set": {
                        **self._finished(ExecutionStatus.CANCELED, now),
                        "reason": "canceled before it started",
                        "startedAt": None,
                    },
                },
            )
            return
        # Running, it escaped a pause's sweep: back in the queue, it is held to the pause like a new run.
        await self._unless_paused([{**execution, "status": ExecutionStatus.QUEUED.value}], now)

    # -- pauses --------------------------------------------------------------------------------------

    async def skip_queued_while_paused(self, workspace_id: str | None, now: datetime) -> int:
        """The sweep of a pause just written (of one workspace, or of everything): its queued runs end
        `skipped`, reason `paused`, retries waiting for their time included. Returns how many."""
        query: dict[str, Any] = {"status": ExecutionStatus.QUEUED.value}
        if workspace_id is not None:
            query["workspaceId"] = workspace_id
        result = await self._executions.update_many(
            query, {"$set": self._paused_fields("scheduler" if workspace_id is None else "workspace", now)}
        )
        return result.modified_count

    async def _unless_paused(self, docs: builtins.list[dict[str, Any]], now: datetime) -> set[ObjectId]:
        """Right after `docs` were left queued: those of a paused scope end skipped (see the class's
        docstring for why the read comes after the write). The whole scope is swept again, not only these:
        a pause whose own sweep never came (the API died between its two writes) holds from the first run
        queued in its scope. Returns the ids of `docs` skipped; the documents say so too."""
        queued = [doc for doc in docs if doc["status"] == ExecutionStatus.QUEUED.value]
        if not queued:
            return set()
        paused = await self._control.paused_ids()
        if not paused:
            return set()
        caught = {doc["_id"]: scope for doc in queued if (scope := paused_scope(paused, doc["workspaceId"]))}
        if "scheduler" in caught.values():
            await self.skip_queued_while_paused(None, now)
        else:
            for workspace_id in sorted({doc["workspaceId"] for doc in queued if doc["_id"] in caught}):
                await self.skip_queued_while_paused(workspace_id, now)
        for doc in queued:
            if doc["_id"] in caught:
                doc.update(self._paused_fields(caught[doc["_id"]], now))
        return set(caught)

    def _paused_fields(self, scope: str, now: datetime) -> dict[str, Any]:
        return {**self._finished(ExecutionStatus.SKIPPED, now), "reason": PAUSED_REASON, "pausedBy": scope}

    async def others_running(self, execution: dict[str, Any]) -> int:
        """How many other runs of the execution's workspace are recorded running, across the fleet."""
        return await self._executions.count_documents(
            {
                "workspaceId": execution["workspaceId"],
                "status": ExecutionStatus.RUNNING.value,
                "_id": {"$ne": execution["_id"]},
            }
        )

    async def running_by_workspace(self, workspaces: builtins.list[str]) -> dict[str, int]:
        """How many runs each of these workspaces has going, across the fleet. A projected `find` counted
        here rather than a `$group`: it is read at every dispatch pass under a cap, and the in-memory
        database copies a whole collection into every aggregation."""
        if not workspaces:
            return {}
        docs = await self._executions.find(
            {"status": ExecutionStatus.RUNNING.value, "workspaceId": {"$in": workspaces}}, {"workspaceId": 1}
        ).to_list(None)
        return dict(Counter(doc["workspaceId"] for doc in docs))

    async def running_of_job(self, job_id: ObjectId) -> dict[str, Any] | None:
        """The job's execution recorded `running`, if any."""
        return await self._executions.find_one(
            {"jobId": job_id, "status": ExecutionStatus.RUNNING.value},
            {"_id": 1, "workerId": 1, "jobId": 1, "workspaceId": 1},
        )

    async def progress(
        self,
        execution_id: ObjectId,
        *,
        stats: dict[str, Any],
        lines: builtins.list[str],
        max_lines: int,
        pid: int | None = None,
    ) -> None:
        """A running execution's stats and new log lines (and its pid, with the first report)."""
        fields: dict[str, Any] = {"stats": stats}
        if pid is not None:
            fields["pid"] = pid
        update: dict[str, Any] = {"$set": fields}
        if lines:
            update["$push"] = {"logTail": {"$each": lines, "$slice": -max_lines}}
        await self._executions.update_one({"_id": execution_id}, update)

    # -- the end of a run ----------------------------------------------------------------------------

    async def finish(
        self,
        execution_id: ObjectId,
        status: ExecutionStatus,
        now: datetime,
        *,
        committed: bool,
        **fields: Any,
    ) -> dict[str, Any]:
        """End a running execution, which lets go of its job. `outcomeCommitted` says whether its job status
        and retry are written: a new leader finishes what a deposed one could not. Returns the fields
        written."""
        written = {**self._finished(status, now), **fields, "outcomeCommitted": committed}
        await self._executions.update_one(
            {"_id": execution_id, "status": ExecutionStatus.RUNNING.value}, {"$set": written}
        )
        return written

    async def mark_committed(self, execution_id: ObjectId) -> None:
        await self._executions.update_one({"_id": execution_id}, {"$set": {"outcomeCommitted": True}})

    async def end_unstarted(
        self, execution_id: ObjectId, status: ExecutionStatus, reason: str, now: datetime, **extra: Any
    ) -> None:
        """A queued execution that will never run: skipped (overlap, stale slot) or canceled (job gone)."""
        await self._executions.update_one(
            {"_id": execution_id, "status": ExecutionStatus.QUEUED.value},
            {"$set": {**self._finished(status, now), "reason": reason, **extra}},
        )

    async def skip_missed(self, execution_ids: builtins.list[ObjectId], now: datetime) -> None:
        """Queued slots of a dead leader that lost to a newer slot or ran out of grace."""
        if execution_ids:
            await self._executions.update_many(
                {"_id": {"$in": execution_ids}, "status": ExecutionStatus.QUEUED.value},
                {"$set": {**self._finished(ExecutionStatus.SKIPPED, now), "reason": "missed"}},
            )

    async def fail_to_launch(self, execution_id: ObjectId, *, owner: str, error: str, now: datetime) -> None:
        """A bug or a database error in the launch itself ends the execution as failed, rather than leave
        it queued (tried again at every poll) or running (until recovery)."""
        await self._executions.update_one(
            {
                "_id": execution_id,
                "status": {"$in": ACTIVE_STATUSES},
                "$or": [{"workerId": None}, {"workerId": owner}],
            },
            {"$set": {**self._finished(ExecutionStatus.FAILED, now), "error": error}},
        )

    async def abandon(self, execution_id: ObjectId, now: datetime) -> bool:
        """A running execution that no longer holds its job's lock (its worker stopped renewing it: the
        caller has seen it lapse or taken it over); True if this call ended it."""
        result = await self._executions.update_one(
            {"_id": execution_id, "status": ExecutionStatus.RUNNING.value},
            {
                "$set": {
                    **self._finished(ExecutionStatus.ABANDONED, now),
                    "error": "its worker stopped renewing the job lock (crashed or cut off)",
                    "outcomeCommitted": False,
                }
            },
        )
        return result.modified_count == 1

    # -- the worker's reads --------------------------------------------------------------------------

    async def next_up(
        self,
        now: datetime,
        limit: int,
        *,
        labels: builtins.list[str],
        in_hand: builtins.list[ObjectId],
        running_here: builtins.list[ObjectId],
    ) -> tuple[builtins.list[dict[str, Any]], dict[ObjectId, str]]:
        """One read per dispatch pass (projected, through the `dispatch` index): the queued executions whose
        time has come and which this worker may run (no label, or one of `labels`), oldest first, and the
        cancel requests of the runs going here, with their reasons. `in_hand`: queued ids this worker holds
        already. When the batch is full, the workspaces it left out get a batch of their own: one tenant's
        backlog does not hide another's run. A `find`, not an aggregation: the in-memory database copies
        every document of a collection into an aggregation (238 ms a pass over 5,000 executions, against
        11 ms for the same `find`)."""
        due = self._due(now, labels, in_hand)
        watched: builtins.list[dict[str, Any]] = [due]
        if running_here:
            watched.append({"_id": {"$in": running_here}, "cancelRequestedAt": {"$ne": None}})
        # Running rows (the cancel requests, at most one per run here) sort before queued ones: the limit
        # never cuts them.
        docs = await self._next({"$or": watched}, limit + len(running_here))
        queued = [doc for doc in docs if doc["status"] == ExecutionStatus.QUEUED.value]
        cancels = {
            doc["_id"]: doc.get("cancelReason") or "cancel requested"
            for doc in docs
            if doc["status"] == ExecutionStatus.RUNNING.value
        }
        if limit and len(queued) >= limit:
            seen = {doc["workspaceId"] for doc in queued}
            others = [ws for ws in await self._executions.distinct("workspaceId", due) if ws not in seen]
            if others:
                queued += await self._next({**due, "workspaceId": {"$in": others}}, limit)
        return queued, cancels

    def _due(self, now: datetime, labels: builtins.list[str], in_hand: builtins.list[ObjectId]):
        query: dict[str, Any] = {
            "status": ExecutionStatus.QUEUED.value,
            "runAfter": {"$lte": now},
            "requiredLabel": {"$in": [None, *labels]},
        }
        if in_hand:
            query["_id"] = {"$nin": in_hand}
        return query

    async def _next(self, match: dict[str, Any], limit: int) -> builtins.list[dict[str, Any]]:
        return (
            await self._executions.find(match, LAUNCH_FIELDS)
            .sort([("status", -1), ("runAfter", 1), ("_id", 1)])
            .limit(limit)
            .to_list(None)
        )

    async def all_running(self) -> builtins.list[dict[str, Any]]:
        """Every execution recorded `running` (the `dispatch` index serves it): recovery checks locks."""
        return await self._executions.find(
            {"status": ExecutionStatus.RUNNING.value},
            {"_id": 1, "jobId": 1, "workspaceId": 1, "workerId": 1},
        ).to_list(None)

    async def uncommitted(self) -> builtins.list[dict[str, Any]]:
        """Finished executions whose job status and retry are not written: their worker died mid-run
        (abandoned) or between the end and the commit."""
        return await self._executions.find({"outcomeCommitted": False}).to_list(None)

    async def fired_slots(
        self, slots: builtins.list[tuple[ObjectId, datetime]]
    ) -> set[tuple[ObjectId, datetime]]:
        """Which of these (job, slot) have a fired record (not a missed range) of their first attempt."""
        if not slots:
            return set()
        docs = await self._executions.find(
            {
                "$or": [{"jobId": job_id, "scheduledFor": slot, "attempt": 1} for job_id, slot in slots],
                "missed": {"$exists": False},
            },
            {"jobId": 1, "scheduledFor": 1},
        ).to_list(None)
        return {(doc["jobId"], doc["scheduledFor"]) for doc in docs}

    async def scheduled_since(self, first_by_job: dict[ObjectId, datetime]) -> builtins.list[dict[str, Any]]:
        """Scheduled records of each job at or after its given slot: one read for them all."""
        by_first: dict[datetime, builtins.list[ObjectId]] = {}
        for job_id, first in first_by_job.items():
            by_first.setdefault(first, []).append(job_id)
        if not by_first:
            return []
        return await self._executions.find(
            {
                "trigger": Trigger.SCHEDULE.value,
                "$or": [
                    {"jobId": {"$in": ids}, "scheduledFor": {"$gte": first}}
                    for first, ids in by_first.items()
                ],
            },
            {"jobId": 1, "scheduledFor": 1, "status": 1, "missed.lastSlot": 1},
        ).to_list(None)

    # -- the API -------------------------------------------------------------------------------------

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
                    await self.cancel(doc["_id"], now, "replaced by a manual run")
            doc = new_execution_document(job=job, trigger=Trigger.MANUAL, scheduled_for=requested, now=now)
            try:
                await self._executions.insert_one(doc)
            except DuplicateKeyError:
                # Either a racing request queued one (found above on the next turn), or a run canceled
                # within the same millisecond holds this slot: the next millisecond is free.
                requested += timedelta(milliseconds=1)
                continue
            if await self._unless_paused([doc], now):
                # A pause landed while this was being queued: it is recorded skipped, and refused as the
                # API refuses a run asked for while paused.
                raise Paused(
                    details={
                        "pausedBy": doc["pausedBy"],
                        "workspaceId": job["workspaceId"],
                        "executionId": str(doc["_id"]),
                    }
                )
            return doc
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

    async def cancel(self, execution_id: ObjectId, now: datetime, reason: str) -> dict[str, Any] | None:
        """Cancel one execution: a queued one ends at once, a running one is asked to stop by its worker."""
        return await self._cancel({"_id": execution_id, "cancelRequestedAt": None}, now, reason=reason)

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
                    **self._finished(ExecutionStatus.CANCELED, now),
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
