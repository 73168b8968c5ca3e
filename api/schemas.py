"""Bodies that are not a stored document as such (answers, merge patches), named for the OpenAPI document."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from models.documents import CamelModel
from models.execution import ExecutionView
from models.sync_job import JobStatus, StoredSchedule, SyncJobSpec
from models.tokens import TokenView
from models.webhook import WebhookSpec


class RunAccepted(CamelModel):
    execution_id: str
    execution: ExecutionView


class FireTime(CamelModel):
    utc: str = Field(description="ISO 8601, UTC (Z).")
    local: str = Field(description="The same moment in the job's time zone, with its offset.")


class JobStatusView(JobStatus):
    """GET .../status: the worker's view of the job, its active run, next fire times (enabled jobs only)."""

    job_id: str
    enabled: bool
    version: int
    schedule_live: bool = Field(description="True once the worker's schedule reflects this version.")
    running: bool
    active_execution: ExecutionView | None
    schedule: StoredSchedule
    next_fire_times: list[FireTime] = Field(description="Empty for a disabled job: it fires at no time.")


class Cursors(CamelModel):
    cursors: dict[str, Any] = Field(description="Each entity's saved incremental position.")


class CreatedToken(TokenView):
    token: str = Field(description="The token itself, shown only in this answer; only its hash is kept.")


class Health(CamelModel):
    status: str


def _patch_type(annotation: Any) -> Any:
    # A nested object is merged, not replaced, so any subset of its fields may be sent.
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return dict[str, Any] | None
    return annotation | None


# RFC 7396: every field optional; null restores a field's default. The merged job is validated as a whole.
SyncJobPatch: type[BaseModel] = create_model(
    "SyncJobPatch",
    __base__=CamelModel,
    **{name: (_patch_type(field.annotation), None) for name, field in SyncJobSpec.model_fields.items()},
)


# The same for a webhook: any of its writable fields.
WebhookPatch: type[BaseModel] = create_model(
    "WebhookPatch",
    __base__=CamelModel,
    **{name: (_patch_type(field.annotation), None) for name, field in WebhookSpec.model_fields.items()},
)


class ResourcePatch(BaseModel):
    """RFC 7396 merge patch of a data source or destination: any of its fields; null removes one."""

    model_config = ConfigDict(extra="allow")


class Whoami(CamelModel):
    """What the bearer token grants: its workspace (none for an admin), role and name."""

    workspace_id: str | None
    admin: bool
    role: str = Field(description="viewer, operator, editor, owner, or admin")
    name: str


class LeaderView(CamelModel):
    owner: str
    term: int
    expires_at: str
    heartbeat_at: str | None = None


class WorkerView(CamelModel):
    model_config = ConfigDict(extra="allow")

    worker_id: str
    heartbeat_at: str
    leading: bool
    running: list[str] = Field(description="Execution ids this worker runs now.")
    capacity: int | None = Field(default=None, description="Runs it takes at once (MAX_CONCURRENT_RUNS).")
    labels: list[str] = Field(default=[], description="Labels it offers (WORKER_LABELS).")


class FireTimeEntry(CamelModel):
    model_config = ConfigDict(extra="allow")

    job_id: str
    workspace_id: str
    name: str
    at: str


class SchedulerView(CamelModel):
    """GET /api/admin/scheduler (and the answer to pause/resume): the leader, the workers' heartbeats, and the
    next fire times across every workspace."""

    model_config = ConfigDict(extra="allow")

    leader: LeaderView | None
    paused: bool
    reload_mode: str | None
    workers: list[WorkerView]
    jobs_loaded: int
    next_fire_times: list[FireTimeEntry]


class WorkspacePause(CamelModel):
    workspace_id: str
    paused: bool
    changed_at: str
    scheduler_paused: bool = Field(description="The whole scheduler is paused too: nothing runs.")


class Durations(CamelModel):
    model_config = ConfigDict(extra="allow")

    p50: float | None
    p95: float | None


class DaySeries(CamelModel):
    date: str
    counts: dict[str, int]
    duration_ms: Durations


class Statistics(CamelModel):
    """Executions queued in the last `days` UTC days (today included)."""

    from_: str = Field(alias="from")
    to: str
    days: int
    total: int
    counts: dict[str, int]
    success_rate: float | None
    duration_ms: Durations
    records_written: int
    per_day: list[DaySeries]
