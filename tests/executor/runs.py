"""Helpers for runs of real source processes."""

from executor.outcome import RunRequest
from models.execution import Trigger, new_execution_document
from models.namespaces import workspace_database


def running(pid: int, marker: str) -> bool:
    """Whether `pid` is a live (not zombie, not reaped) process whose command line holds `marker`."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            argv = cmdline.read()
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return marker.encode() in argv and state != b"Z"


def request_for(job, clock, **kwargs) -> RunRequest:
    execution = new_execution_document(
        job=job, trigger=Trigger.MANUAL, scheduled_for=clock.now(), now=clock.now()
    )
    return RunRequest(execution=execution, job=job, timeout_seconds=job["timeoutSeconds"], **kwargs)


def warehouse_db(db):
    """The destination's database: workspace ws-a's own, named `warehouse`."""
    return db.client[workspace_database("ws-a", "warehouse")]


async def warehouse(db, name: str) -> list[dict]:
    return await warehouse_db(db)[name].find().sort("_id", 1).to_list(None)
