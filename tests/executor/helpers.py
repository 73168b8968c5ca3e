"""Building blocks of the executor tests: source scripts, run requests, the destination's contents."""

from executor.outcome import RunRequest
from models.execution import Trigger, new_execution_document

PRELUDE = """
import json, sys, os, signal, time
spec = json.loads(sys.stdin.readline())
def emit(**message):
    sys.stdout.write(json.dumps(message) + "\\n")
    sys.stdout.flush()
"""


def request_for(job, clock, **kwargs) -> RunRequest:
    execution = new_execution_document(
        job=job, trigger=Trigger.MANUAL, scheduled_for=clock.now(), now=clock.now()
    )
    return RunRequest(execution=execution, job=job, timeout_seconds=job["timeoutSeconds"], **kwargs)


async def warehouse(db, name: str) -> list[dict]:
    return await db.client["warehouse"][name].find().sort("_id", 1).to_list(None)
