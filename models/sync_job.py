"""The SyncJob: what a user writes (SyncJobSpec) and what is stored and shown (SyncJobView)."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, Field, ValidationInfo, create_model, field_validator, model_validator

from models.cron import cron_problem, schedule_problem, timezone_problem
from models.documents import CamelModel, Document, IdText, Name

EntityName = Annotated[str, Field(min_length=1, max_length=200)]
IdRef = Annotated[
    str, Field(pattern="^[0-9a-f]{24}$", description="The id of a resource of the same workspace.")
]


class SyncMode(StrEnum):
    FULL = "full"
    INCREMENTAL = "incremental"


class OverlapPolicy(StrEnum):
    SKIP = "skip"
    QUEUE = "queue"
    CANCEL_RUNNING = "cancel_running"


class Schedule(CamelModel):
    cron: Annotated[str, Field(min_length=1, max_length=200, examples=["0 * * * *", "@daily"])]
    timezone: Annotated[str, Field(max_length=64, description="IANA time zone name.")] = "UTC"

    @field_validator("cron")
    @classmethod
    def _cron_is_valid(cls, value: str) -> str:
        problem = cron_problem(value)
        if problem:
            raise ValueError(problem)
        return value.strip()

    @field_validator("timezone")
    @classmethod
    def _timezone_is_valid(cls, value: str) -> str:
        problem = timezone_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _fires_within_the_horizon(self, info: ValidationInfo) -> "Schedule":
        # Only on input, where the caller hands in its clock as context {"now": ...}: a stored job is shown
        # as it is, and the check costs up to ~25 ms for a cron that hides in a DST gap.
        now = (info.context or {}).get("now")
        if now is not None:
            problem = schedule_problem(self.cron, self.timezone, now)
            if problem:
                raise ValueError(problem)
        return self


class StoredSchedule(Document):
    """A stored schedule as shown: it was validated when written, so reading it re-checks nothing (the cron
    check costs croniter six parses; a view is built for every job of every list)."""

    cron: str
    timezone: str = "UTC"


class RetryPolicy(CamelModel):
    max_attempts: Annotated[int, Field(ge=1, le=20, description="Attempts in all, the first included.")] = 3
    backoff_seconds: Annotated[float, Field(ge=0, le=86_400)] = 30
    backoff_multiplier: Annotated[float, Field(ge=1, le=10)] = 2
    max_backoff_seconds: Annotated[float, Field(ge=0, le=86_400)] = 3600


class SyncJobSpec(CamelModel):
    """The fields a user sets on create (POST) and replace (PUT)."""

    name: Name
    description: Annotated[str, Field(max_length=2000)] = ""
    data_source_id: IdRef
    destination_database_id: IdRef
    schedule: Schedule
    sync_mode: Annotated[SyncMode, Field(strict=False)] = SyncMode.INCREMENTAL
    entities: Annotated[
        Annotated[list[EntityName], Field(min_length=1, max_length=500)] | None,
        Field(
            description="Entity names to sync; null or left out means every entity the source declares. "
            "An empty list is refused: it would sync nothing."
        ),
    ] = None
    enabled: bool = True
    timeout_seconds: Annotated[int, Field(ge=1, le=7 * 86_400)] = 3600
    retry: RetryPolicy = RetryPolicy()
    overlap_policy: Annotated[OverlapPolicy, Field(strict=False)] = OverlapPolicy.SKIP
    misfire_grace_seconds: Annotated[int, Field(ge=0, le=7 * 86_400)] = 300
    required_label: Annotated[
        str | None,
        Field(
            pattern="^[a-z0-9_.-]{1,64}$",
            description="Run only on workers offering this label (WORKER_LABELS), e.g. for a connector "
            "installed on some workers only; null: any worker.",
        ),
    ] = None

    @model_validator(mode="after")
    def _entities_unique(self) -> "SyncJobSpec":
        if self.entities is not None and len(set(self.entities)) != len(self.entities):
            raise ValueError("entities must not repeat")
        return self

    def to_document(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json")


# Fields the worker keeps; users read them but never write them.
STATUS_FIELDS = (
    "lastRunAt",
    "lastRunStatus",
    "lastError",
    "lastSuccessAt",
    "nextRunAt",
    "consecutiveFailures",
    "avgDurationMs",
    "runCount",
    "failureCount",
    "scheduleAppliedVersion",
    "scheduleAppliedAt",
)


class JobStatus(Document):
    last_run_at: datetime | None = None
    last_run_status: str | None = None
    last_error: str | None = None
    last_success_at: datetime | None = None
    next_run_at: datetime | None = None
    consecutive_failures: int = 0
    avg_duration_ms: float | None = None
    run_count: int = 0
    failure_count: int = 0
    schedule_applied_version: int | None = Field(
        default=None,
        description="The version the worker's schedule reflects; equal to version once an edit is live.",
    )
    schedule_applied_at: datetime | None = None


def as_stored(model: type[BaseModel], name: str, **replaced: Any) -> type[Document]:
    """`model`'s fields as stored documents show them: the same names, order, types, defaults and
    descriptions, without the input checks (bounds, patterns, strictness, model validators). A stored document
    was checked when it was written; checks that tightened since must not turn reading it into a 500."""
    fields: dict[str, Any] = {
        field: (info.annotation, Field(info.default, description=info.description, examples=info.examples))
        for field, info in model.model_fields.items()
    }
    fields.update(replaced)
    return create_model(name, __base__=Document, __doc__=f"A stored {model.__name__}, as shown.", **fields)


StoredRetryPolicy = as_stored(RetryPolicy, "StoredRetryPolicy")
StoredJobSpec = as_stored(
    SyncJobSpec,
    "StoredJobSpec",
    schedule=(StoredSchedule, ...),
    entities=(list[str] | None, None),
    retry=(StoredRetryPolicy, StoredRetryPolicy()),
)


class SyncJobView(StoredJobSpec, JobStatus):  # type: ignore[valid-type, misc]  # a created model
    """A stored SyncJob as the API shows it."""

    model_config = Document.model_config

    id: IdText = Field(alias="_id", serialization_alias="id")
    workspace_id: str
    version: int
    created_at: datetime
    updated_at: datetime


# Fields the worker keeps on a job for itself, never shown: each entity's saved position (a connector's state,
# of any size), the leader's fencing token, and what the next outcome's write is conditioned on.
WORKER_FIELDS = ("cursors", "fenceTerm", "lastExecutionId", "timedRunCount")
# The projection of GET, the list and status: every stored field but the worker's, which would be copied,
# sent and decoded for nothing. Left out rather than the shown ones named: the in-memory database rebuilds a
# projection for every document it returns, and naming the view's 29 fields cost a list of 50 more than
# copying the 4 others did. tests/api/test_job_projection.py checks the two sets against a job as the
# worker leaves it.
UNSHOWN_JOB_FIELDS = dict.fromkeys(WORKER_FIELDS, 0)


def new_job_document(workspace_id: str, spec: SyncJobSpec, now: datetime) -> dict[str, Any]:
    """A fresh SyncJob document, with the status fields the worker fills in later."""
    return {
        "workspaceId": workspace_id,
        **spec.to_document(),
        "createdAt": now,
        "updatedAt": now,
        "version": 1,
        "lastRunAt": None,
        "lastRunStatus": None,
        "lastError": None,
        "lastSuccessAt": None,
        "nextRunAt": None,
        "consecutiveFailures": 0,
        "avgDurationMs": None,
        "runCount": 0,
        "failureCount": 0,
        "scheduleAppliedVersion": None,
        "scheduleAppliedAt": None,
        "cursors": {},
    }
