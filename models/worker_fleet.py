"""The live workers as their heartbeats in `workers` show them: what a queued run can expect of the fleet.
A heartbeat counts while it is younger than three beats: the TTL monitor deletes stale ones only
eventually, so readers judge them by `heartbeatAt` themselves."""

from datetime import datetime, timedelta
from typing import Any

from models.collections import WORKERS
from models.execution import ExecutionStatus

STALE_AFTER_BEATS = 3


def stale_after(renew_seconds: float) -> timedelta:
    return timedelta(seconds=STALE_AFTER_BEATS * renew_seconds)


async def live_heartbeats(db, *, now: datetime, renew_seconds: float) -> list[dict[str, Any]]:
    return (
        await db[WORKERS]
        .find({"heartbeatAt": {"$gt": now - stale_after(renew_seconds)}})
        .sort("_id", 1)
        .to_list(None)
    )


async def waiting_for(db, execution: dict[str, Any], *, now: datetime, renew_seconds: float) -> str | None:
    """Why a queued execution cannot start, when the fleet is the reason: no live worker offers the label
    its job requires. None when some worker can take it (it waits for its turn, its time or its job)."""
    label = execution.get("requiredLabel")
    if execution.get("status") != ExecutionStatus.QUEUED.value or not label:
        return None
    for heartbeat in await live_heartbeats(db, now=now, renew_seconds=renew_seconds):
        if label in (heartbeat.get("labels") or []):
            return None
    return f"a worker offering the label '{label}': no live worker offers it (WORKER_LABELS)"
