"""The per-job lock in `job_execution_locks`: one execution of a job at a time, across every worker.
Taking it is the claim, in the execution store; this keeps a held lock renewed and lets it go."""

from datetime import datetime, timedelta

from bson import ObjectId

from models.clock import Clock
from models.collections import JOB_LOCKS
from models.locks import JobLock


class JobLocks:
    def __init__(self, db, *, worker_id: str, clock: Clock, ttl_seconds: float):
        self._locks = db[JOB_LOCKS]
        self._worker_id = worker_id
        self._clock = clock
        self.ttl = timedelta(seconds=ttl_seconds)

    async def renew(self, job_id: ObjectId, execution_id: ObjectId) -> bool:
        now = self._clock.now()
        result = await self._locks.update_one(
            {"_id": job_id, "executionId": execution_id, "owner": self._worker_id, "expiresAt": {"$gt": now}},
            {"$set": {"expiresAt": now + self.ttl}},
        )
        return result.matched_count == 1

    async def release(self, job_id: ObjectId, execution_id: ObjectId) -> None:
        await self._locks.delete_one({"_id": job_id, "executionId": execution_id, "owner": self._worker_id})

    async def holder(self, job_id: ObjectId) -> JobLock | None:
        """The live lock of a job, or None: an expired document is free, whatever the TTL monitor did."""
        return await self._locks.find_one({"_id": job_id, "expiresAt": {"$gt": self._clock.now()}})

    async def live_execution_ids(self, execution_ids: list[ObjectId], now: datetime) -> set[ObjectId]:
        docs = await self._locks.find(
            {"executionId": {"$in": execution_ids}, "expiresAt": {"$gt": now}}, {"executionId": 1}
        ).to_list(None)
        return {doc["executionId"] for doc in docs}
