"""What a webhook receives: the event as JSON (or as a Slack/Discord message), and its signature.

Signature: header `X-Syncjobs-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
A receiver recomputes the HMAC over the timestamp and the raw body, compares in constant time, and refuses
a timestamp more than 5 minutes from its own clock; `X-Syncjobs-Delivery` (the same on every retry of
one delivery) lets it drop a replay inside that window too. See `verify_signature`."""

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

from models.webhook import WebhookFormat

REPLAY_WINDOW_SECONDS = 300
TITLES = {
    "execution.succeeded": "succeeded",
    "execution.failed": "failed",
    "execution.timed_out": "timed out",
    "execution.abandoned": "was abandoned (its worker died)",
    "job.failing": "is failing",
    "job.recovered": "recovered",
    "job.duration_anomaly": "ran unusually long",
}


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def event_payload(
    event: str, execution: dict[str, Any], job: dict[str, Any] | None, details: dict[str, Any]
) -> dict[str, Any]:
    """The event as stored with its delivery and sent as JSON."""
    return {
        "event": event,
        "occurredAt": iso(execution.get("finishedAt")),
        "workspaceId": execution["workspaceId"],
        "job": {"id": str(execution["jobId"]), "name": (job or {}).get("name")},
        "execution": {
            "id": str(execution["_id"]),
            "status": execution["status"],
            "trigger": execution.get("trigger"),
            "attempt": execution.get("attempt"),
            "scheduledFor": iso(execution.get("scheduledFor")),
            "startedAt": iso(execution.get("startedAt")),
            "finishedAt": iso(execution.get("finishedAt")),
            "durationMs": execution.get("durationMs"),
            "error": execution.get("error"),
        },
        "details": details,
    }


def summary(payload: dict[str, Any]) -> str:
    job = payload["job"]
    line = f"syncjobs: job {job['name'] or job['id']} ({payload['workspaceId']}) {TITLES[payload['event']]}"
    details = payload.get("details") or {}
    if "consecutiveFailures" in details:
        line += f" ({details['consecutiveFailures']} failed runs in a row)"
    if "p95Ms" in details:
        line += f" ({payload['execution']['durationMs']} ms against a p95 of {details['p95Ms']} ms)"
    if payload["execution"].get("error"):
        line += f": {payload['execution']['error'][:300]}"
    return line


def rendered(fmt: str, delivery_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The body for the webhook's format: Slack's {"text"}, Discord's {"content"}, or the event itself."""
    if fmt == WebhookFormat.SLACK:
        return {"text": summary(payload)}
    if fmt == WebhookFormat.DISCORD:
        return {"content": summary(payload)[:2000]}
    return {"id": delivery_id, **payload}


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def signed_request(
    fmt: str, delivery_id: str, payload: dict[str, Any], secret: str, now: datetime
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one attempt; the timestamp is the attempt's, so a retry signs anew."""
    body = json.dumps(rendered(fmt, delivery_id, payload), separators=(",", ":")).encode()
    timestamp = int(now.timestamp())
    return body, {
        "Content-Type": "application/json",
        "User-Agent": "syncjobs-webhooks",
        "X-Syncjobs-Event": payload["event"],
        "X-Syncjobs-Delivery": delivery_id,
        "X-Syncjobs-Signature": signature(secret, timestamp, body),
    }


def verify_signature(secret: str, header: str, body: bytes, now: datetime) -> bool:
    """What a receiver does: the HMAC matches and the timestamp is within the replay window."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now.timestamp() - timestamp) > REPLAY_WINDOW_SECONDS:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), header)
