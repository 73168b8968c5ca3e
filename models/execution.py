"""JobExecution: one attempt at running a job for one slot, from queued to its final status."""

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bson import ObjectId
from pydantic import Field

from models.documents import Document, IdText


class Trigger(StrEnum):
    SCHEDULE = "schedule"
    MANUAL = "manual"
    RETRY = "retry"


class ExecutionStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELED = "canceled"
    ABANDONED = "abandoned"
    SKIPPED = "skipped"

    @property
    def finished(self) -> bool:
        return self not in (ExecutionStatus.QUEUED, ExecutionStatus.RUNNING)


ACTIVE_STATUSES = [ExecutionStatus.QUEUED.value, ExecutionStatus.RUNNING.value]
# Outcomes a retry may follow; a cancel or a skip is what somebody wanted.
RETRYABLE_STATUSES = {ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT, ExecutionStatus.ABANDONED}


class DeletedJob(Document):
    """The job's last state, kept on each of its executions when it is deleted: its history stays readable
    until retention ends."""

    name: str
    data_source_id: str
    destination_database_id: str
    schedule: dict[str, Any]
    sync_mode: str
    entities: list[str] | None = None
    deleted_at: datetime


def deleted_job_snapshot(job: dict[str, Any], now: datetime) -> dict[str, Any]:
    fields = ("name", "dataSourceId", "destinationDatabaseId", "schedule", "syncMode", "entities")
    return {**{key: job.get(key) for key in fields}, "deletedAt": now}


class ExecutionView(Document):
    """A JobExecution as the API shows it."""

    id: IdText = Field(alias="_id", serialization_alias="id")
    job_id: IdText
    workspace_id: str
    trigger: Trigger
    scheduled_for: datetime
    attempt: int
    status: ExecutionStatus
    queued_at: datetime
    run_after: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: int | None = None
    worker_id: str | None = None
    required_label: str | None = None
    waiting_for: str | None = Field(
        default=None,
        description="Why a queued run has not started, when no live worker can take it (its label).",
    )
    pid: int | None = None
    exit_code: int | None = None
    error: str | None = None
    reason: str | None = None
    stats: dict[str, Any] = {}
    log_tail: list[str] = []
    cancel_requested_at: datetime | None = None
    missed: dict[str, Any] | None = None
    job: DeletedJob | None = Field(default=None, description="Set once the job is deleted: its last state.")


def new_execution_document(
    *,
    job: dict[str, Any],
    trigger: Trigger,
    scheduled_for: datetime,
    now: datetime,
    attempt: int = 1,
    run_after: datetime | None = None,
) -> dict[str, Any]:
    """A queued execution of `job`."""
    return {
        "_id": ObjectId(),
        "jobId": job["_id"],
        "workspaceId": job["workspaceId"],
        "trigger": trigger.value,
        "scheduledFor": scheduled_for,
        "attempt": attempt,
        "status": ExecutionStatus.QUEUED.value,
        "queuedAt": now,
        "runAfter": run_after or now,
        "startedAt": None,
        "finishedAt": None,
        "durationMs": None,
        "workerId": None,
        "requiredLabel": job.get("requiredLabel"),
        "pid": None,
        "exitCode": None,
        "error": None,
        "stats": {},
        "logTail": [],
        "cancelRequestedAt": None,
    }


def finished_fields(status: ExecutionStatus, now: datetime, retention_days: float) -> dict[str, Any]:
    """What every finished execution carries: its status, when it ended and when it may be deleted."""
    return {"status": status.value, "finishedAt": now, "expireAt": now + timedelta(days=retention_days)}
