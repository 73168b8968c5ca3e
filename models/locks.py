"""The lock documents, as operators see them in db.worker_locks and db.job_execution_locks.

Both are leases: valid while `expiresAt` is in the future, judged by the query against the clock, never by
whether a TTL monitor has deleted the document yet.
"""

from datetime import datetime
from typing import TypedDict

from bson import ObjectId

LEADER_LOCK_ID = "sync-worker"


class JobLock(TypedDict):
    """`job_execution_locks`, one document per job while one of its executions holds it."""

    _id: ObjectId  # the job's id
    owner: str  # the worker running it, host:pid:uuid
    executionId: ObjectId  # the execution the lock is for
    term: int  # the leader term the run was claimed under
    acquiredAt: datetime
    heartbeatAt: datetime  # the last renewal (every third of JOB_LOCK_TTL_SECONDS)
    expiresAt: datetime  # past it, the lock is free for the next claim
