"""The scheduler as operators see it across every workspace: the lease, the workers' heartbeats, pauses and
the next fire times. Read-only; the API serves it to admins."""

from datetime import datetime
from typing import Any

from models.collections import SYNC_JOBS, WORKER_LOCKS
from models.locks import LEADER_LOCK_ID
from models.scheduler_control import SchedulerControl
from models.worker_fleet import live_heartbeats

NEXT_FIRE_TIMES = 20


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


async def scheduler_status(db, *, now: datetime, renew_seconds: float) -> dict[str, Any]:
    """The shape of GET /api/admin/scheduler: the live heartbeats only (models.worker_fleet), each with
    its load (runs going against its capacity) and labels."""
    lock = await db[WORKER_LOCKS].find_one({"_id": LEADER_LOCK_ID})
    leader = None
    if lock is not None and lock.get("expiresAt") and lock["expiresAt"] > now:
        leader = {
            "owner": lock["owner"],
            "term": lock["term"],
            "expiresAt": iso(lock["expiresAt"]),
            "heartbeatAt": iso(lock.get("heartbeatAt")),
        }
    heartbeats = await live_heartbeats(db, now=now, renew_seconds=renew_seconds)
    workers = [
        {
            "workerId": doc["_id"],
            "host": doc.get("host"),
            "pid": doc.get("pid"),
            "version": doc.get("version"),
            "heartbeatAt": iso(doc.get("heartbeatAt")),
            "startedAt": iso(doc.get("startedAt")),
            "leading": leader is not None and leader["owner"] == doc["_id"],
            "term": doc.get("term"),
            "reloadMode": doc.get("reloadMode"),
            "jobsLoaded": doc.get("jobsLoaded"),
            "running": [str(execution_id) for execution_id in doc.get("running", [])],
            "capacity": doc.get("capacity"),
            "labels": doc.get("labels") or [],
        }
        for doc in heartbeats
    ]
    leading = next((worker for worker in workers if worker["leading"]), None)
    upcoming = (
        await db[SYNC_JOBS]
        .find(
            {"enabled": True, "nextRunAt": {"$ne": None}},
            {"workspaceId": 1, "name": 1, "nextRunAt": 1},
        )
        .sort([("nextRunAt", 1), ("_id", 1)])
        .limit(NEXT_FIRE_TIMES)
        .to_list(None)
    )
    return {
        "leader": leader,
        "paused": await SchedulerControl(db).globally_paused(),
        "reloadMode": leading["reloadMode"] if leading else None,
        "workers": workers,
        # What the leader holds in its schedule, as of its last heartbeat.
        "jobsLoaded": (leading["jobsLoaded"] or 0) if leading else 0,
        "nextFireTimes": [
            {
                "jobId": str(doc["_id"]),
                "workspaceId": doc["workspaceId"],
                "name": doc.get("name"),
                "at": iso(doc["nextRunAt"]),
            }
            for doc in upcoming
        ],
    }
