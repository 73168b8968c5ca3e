"""The per-job lock in `job_execution_locks`: one execution of a job at a time, across every worker.

Each step is one atomic call and judges a lease by comparing `expiresAt` with the clock in the query, never
by whether the TTL monitor has deleted a lapsed document. A free lock has no document (it is deleted on
release) or an `expiresAt` in the past.
"""

from datetime import datetime, timedelta

from bson import ObjectId
from pymongo.errors import DuplicateKeyError, PyMongoError

from models.collections import JOB_LOCKS
from models.locks import JobLock


class JobLocks:
    def __init__(self, db, *, worker_id: str, ttl_seconds: float):
        self._locks = db[JOB_LOCKS]
        self._worker_id = worker_id
        self.ttl = timedelta(seconds=ttl_seconds)

    async def acquire(self, job_id: ObjectId, execution_id: ObjectId, *, now: datetime) -> bool:
        """Take the job's lock for this execution if it is free, lapsed, or already this execution's on this
        worker: the claim, on whichever worker makes it. False when another holds it: the upsert then
        collides with the live document's `_id`."""
        try:
            await self._locks.update_one(
                {
                    "_id": job_id,
                    "$or": [
                        {"expiresAt": {"$lte": now}},
                        {"owner": self._worker_id, "executionId": execution_id},
                    ],
                },
                {
                    "$set": {
                        "owner": self._worker_id,
                        "executionId": execution_id,
                        "acquiredAt": now,
                        "heartbeatAt": now,
                        "expiresAt": now + self.ttl,
                    }
                },
                upsert=True,
            )
        except DuplicateKeyError:
            return False
        return True

    async def renew(self, job_id: ObjectId, execution_id: ObjectId, *, now: datetime) -> bool:
        """Extend my hold; False once the lock is no longer this execution's on this worker (recovery took
        it after it lapsed, or another claim did)."""
        result = await self._locks.update_one(
            {"_id": job_id, "owner": self._worker_id, "executionId": execution_id},
            {"$set": {"heartbeatAt": now, "expiresAt": now + self.ttl}},
        )
        return result.matched_count == 1

    async def release(self, job_id: ObjectId, execution_id: ObjectId) -> None:
        """Let the job go (its run has ended and its outcome is recorded); a no-op if it is no longer mine.
        A failed release only delays the next run until the lease lapses."""
        try:
            await self._locks.delete_one(
                {"_id": job_id, "owner": self._worker_id, "executionId": execution_id}
            )
        except PyMongoError:
            pass

    async def holder(self, job_id: ObjectId) -> JobLock | None:
        """The job's lock document, live or lapsed (compare `expiresAt`), or None when it is free."""
        return await self._locks.find_one({"_id": job_id})

    async def of_jobs(self, job_ids: list[ObjectId]) -> dict[ObjectId, JobLock]:
        docs = await self._locks.find({"_id": {"$in": job_ids}}).to_list(None)
        return {doc["_id"]: doc for doc in docs}

    async def take_lapsed(self, job_id: ObjectId, execution_id: ObjectId, now: datetime) -> bool:
        """End a lapsed lock of this execution, so that its worker's late renewal fails (and stops the run)
        rather than revive it; True if it was lapsed and is now gone."""
        result = await self._locks.delete_one(
            {"_id": job_id, "executionId": execution_id, "expiresAt": {"$lte": now}}
        )
        return result.deleted_count == 1
