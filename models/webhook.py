"""Webhooks: where a workspace hears about its executions and jobs, signed with a secret of its own."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import Field

from models.documents import CamelModel, Document, IdText

Event = Literal[
    "execution.succeeded",
    "execution.failed",
    "execution.timed_out",
    "execution.abandoned",
    "job.failing",
    "job.recovered",
    "job.duration_anomaly",
]
EVENTS: tuple[Event, ...] = get_args(Event)
DEFAULT_FAILURE_THRESHOLD = 3
SECRET_PREFIX = "whsec_"


class WebhookFormat(StrEnum):
    JSON = "json"
    SLACK = "slack"
    DISCORD = "discord"


class WebhookSpec(CamelModel):
    name: Annotated[str, Field(max_length=200)] = ""
    url: Annotated[str, Field(min_length=1, max_length=2000, pattern=r"^https?://")]
    events: Annotated[list[Event], Field(min_length=1)] = list(EVENTS)
    format: Annotated[WebhookFormat, Field(strict=False)] = WebhookFormat.JSON
    failure_threshold: Annotated[
        int, Field(ge=1, le=1000, description="job.failing fires when this many runs in a row failed.")
    ] = DEFAULT_FAILURE_THRESHOLD
    enabled: bool = True


def shown_url(url: str) -> str:
    """A webhook URL carries its credential in the path (Slack, Discord): show only where it goes."""
    parts = urlsplit(url)
    rest = "/***" if (parts.path.strip("/") or parts.query) else ""
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{rest}"


class WebhookView(Document):
    id: IdText = Field(alias="_id", serialization_alias="id")
    workspace_id: str
    name: str = ""
    url: str = Field(description="Scheme and host only; the rest is a credential.")
    events: list[str]
    format: WebhookFormat
    failure_threshold: int
    enabled: bool
    version: int
    created_at: datetime
    updated_at: datetime


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class DeliveryView(Document):
    id: IdText = Field(alias="_id", serialization_alias="id")
    webhook_id: IdText
    event: str
    execution_id: IdText | None = None
    job_id: IdText | None = None
    status: DeliveryStatus
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None = None
    last_attempt_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None
    payload: dict[str, Any] = {}
