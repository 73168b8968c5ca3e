"""The lock documents, as operators see them in db.worker_locks and db.job_execution_locks.

Both are leases: valid while `expiresAt` is in the future, judged by the query against the clock, never by
whether the TTL monitor has deleted the document yet.
"""

from datetime import datetime
from typing import TypedDict

from bson import ObjectId

LEADER_LOCK_ID = "sync-worker"


class JobLock(TypedDict):
    """`job_execution_locks`, one document per running job: which execution may run it."""

    _id: ObjectId  # the job's id
    owner: str  # the worker running it
    executionId: ObjectId
    lockTerm: int
    acquiredAt: datetime
    expiresAt: datetime  # renewed at a third of its TTL while the sync runs
