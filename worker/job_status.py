"""The worker's writes to a job: status fields only, never `version` or `updatedAt`, so they never
read as a user's edit and never reschedule the job.

Every write is fenced in the same operation, by what entitles the writer:
- the schedule (`nextRunAt`, the applied version) is the leader's: the job carries `fenceTerm`, the highest
  leader term that has written its schedule, and each such write sets it to its own term and filters on
  `fenceTerm <= term`, so once a newer leader has written a job, a deposed leader's late write to it matches
  nothing. A fencing token per job, raised lazily: a new leader writes only the jobs whose stored schedule
  differs from what it loaded (a changed job, a missed slot, each fire), so a change of leader costs no write
  to every job; a late write to a job the new leader has not written yet comes from the version that leader
  holds too (an edit makes it write the job), and its next write to the job replaces it;
- a run's outcome (status fields, cursors) is its run's, on whichever worker it ran: it lands only while no
  run that started later has landed its own (`lastRunAt`, the start of the last run recorded, is not after
  this run's start), so a run cut off from its lock (a paused or partitioned worker whose job went on
  elsewhere) cannot overwrite a newer status or move the cursors back. Leadership changes do not touch it:
  the runs going on the other workers carry on and commit as usual.
"""

from datetime import datetime
from enum import Enum
from typing import Any

from bson import ObjectId

from models.collections import SYNC_JOBS
from models.execution import ExecutionStatus

MAX_ERROR_CHARS = 2000
# A stale read of the run count (another outcome committed in between) is read again at most this often.
OUTCOME_TRIES = 3


class Commit(Enum):
    WRITTEN = "written"
    ALREADY = "already"  # this execution's outcome is on the job already
    SUPERSEDED = "superseded"  # a run that started later has recorded its outcome: this one's is history only
    JOB_GONE = "job_gone"


def fenced(term: int) -> dict[str, Any]:
    """The filter that lets a write through only while no newer term has written the job's schedule."""
    return {"fenceTerm": {"$not": {"$gt": term}}}


class JobStatusWriter:
    def __init__(self, db):
        self._jobs = db[SYNC_JOBS]

    async def schedule_applied(
        self, job_ids: list[ObjectId], version: int, next_run_at: datetime | None, now: datetime, term: int
    ):
        """Record that the schedule reflects `version` of these jobs, and when they fire next."""
        await self._jobs.update_many(
            {"_id": {"$in": job_ids}, "version": version, **fenced(term)},
            {
                "$set": {
                    "scheduleAppliedVersion": version,
                    "scheduleAppliedAt": now,
                    "nextRunAt": next_run_at,
                    "fenceTerm": term,
                }
            },
        )

    async def next_run(self, job_ids: list[ObjectId], next_run_at: datetime | None, term: int) -> None:
        await self._jobs.update_many(
            {"_id": {"$in": job_ids}, **fenced(term)}, {"$set": {"nextRunAt": next_run_at, "fenceTerm": term}}
        )

    async def record_outcome(
        self,
        job: dict[str, Any],
        *,
        execution_id: ObjectId,
        status: ExecutionStatus,
        started_at: datetime | None,
        finished_at: datetime,
        duration_ms: int | None,
        error: str | None,
        cursors: dict[str, Any],
    ) -> Commit:
        """Write a finished run's status (and, on success, its cursors) onto `job`, the job as read when the
        run began; its mean duration and count seed the new mean, and the write is conditioned on them, so
        no read is needed unless another outcome landed in between."""
        succeeded = status == ExecutionStatus.SUCCEEDED
        ran_at = started_at or finished_at
        for _ in range(OUTCOME_TRIES):
            query: dict[str, Any] = {
                "_id": job["_id"],
                # Spelled out for null: a server that compares null with a date (mongoeco does) must not
                # refuse a job's first outcome.
                "$or": [{"lastRunAt": None}, {"lastRunAt": {"$lte": ran_at}}],
                # Once per execution: committing an abandoned run's outcome must not count it twice.
                "lastExecutionId": {"$ne": execution_id},
            }
            fields: dict[str, Any] = {
                "lastRunAt": ran_at,
                "lastRunStatus": status.value,
                "lastError": None if succeeded else (error or status.value)[:MAX_ERROR_CHARS],
                "lastExecutionId": execution_id,
            }
            update: dict[str, Any] = {
                "$set": fields,
                "$inc": {"runCount": 1, "failureCount": 0 if succeeded else 1},
            }
            if succeeded:
                fields["lastSuccessAt"] = finished_at
                fields["consecutiveFailures"] = 0
                for entity, cursor in cursors.items():
                    fields[f"cursors.{entity}"] = cursor
            else:
                update["$inc"]["consecutiveFailures"] = 1
            if duration_ms is not None:
                # The mean over runs that have a duration: an abandoned run has none and does not count.
                timed = job.get("timedRunCount") or 0
                average = job.get("avgDurationMs") or 0.0
                query["timedRunCount"] = timed if timed else {"$in": [0, None]}
                fields["avgDurationMs"] = round((average * timed + duration_ms) / (timed + 1), 1)
                fields["timedRunCount"] = timed + 1
            result = await self._jobs.update_one(query, update)
            if result.matched_count:
                return Commit.WRITTEN
            current = await self._jobs.find_one(
                {"_id": job["_id"]},
                {"lastRunAt": 1, "timedRunCount": 1, "avgDurationMs": 1, "lastExecutionId": 1},
            )
            if current is None:
                return Commit.JOB_GONE
            if current.get("lastExecutionId") == execution_id:
                return Commit.ALREADY
            if current.get("lastRunAt") is not None and current["lastRunAt"] > ran_at:
                return Commit.SUPERSEDED
            job = {**job, **current}
        return Commit.SUPERSEDED
