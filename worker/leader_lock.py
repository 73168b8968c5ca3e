"""The worker lock: a lease in `worker_locks` that names the one worker allowed to schedule.

Each step is one atomic call. A lease is judged by `expiresAt` against the clock in the query itself,
never by the TTL monitor and never by when it was first acquired. `term` rises on every new acquisition
and fences off a deposed leader's late writes.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError, PyMongoError

from models.clock import Clock
from models.collections import WORKER_LOCKS
from models.locks import LEADER_LOCK_ID

LOCK_ID = LEADER_LOCK_ID


@dataclass(frozen=True)
class Lease:
    term: int
    # Local deadline: the lease as written, less the clock-skew margin. Past it this worker must not act,
    # even if the document still names it, because another worker's clock may already see it expired.
    acts_until: datetime

    def valid(self, now: datetime) -> bool:
        return now < self.acts_until


class LeaderLock:
    def __init__(self, db, *, worker_id: str, clock: Clock, lease_seconds: float, skew_seconds: float):
        if skew_seconds >= lease_seconds:
            raise ValueError("the clock-skew margin must be shorter than the lease")
        self._locks = db[WORKER_LOCKS]
        self.worker_id = worker_id
        self._clock = clock
        self._lease = timedelta(seconds=lease_seconds)
        self._skew = timedelta(seconds=skew_seconds)

    async def acquire(self) -> Lease | None:
        """Take the lock if it is free or its lease has expired; None when another worker holds it."""
        started = self._clock.now()
        try:
            doc = await self._locks.find_one_and_update(
                {"_id": LOCK_ID, "expiresAt": {"$lte": started}},
                {
                    "$set": {
                        "owner": self.worker_id,
                        "acquiredAt": started,
                        "heartbeatAt": started,
                        "expiresAt": started + self._lease,
                    },
                    "$inc": {"term": 1},
                },
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            return None  # the document exists and its lease is live: someone else leads
        return Lease(term=doc["term"], acts_until=started + self._lease - self._skew)

    async def renew(self, lease: Lease) -> Lease | None:
        """Extend my lease; None when the lock is no longer mine (another term began)."""
        started = self._clock.now()
        result = await self._locks.update_one(
            {"_id": LOCK_ID, "owner": self.worker_id, "term": lease.term},
            {"$set": {"heartbeatAt": started, "expiresAt": started + self._lease}},
        )
        if result.matched_count == 0:
            return None
        return Lease(term=lease.term, acts_until=started + self._lease - self._skew)

    async def release(self, lease: Lease) -> None:
        """Let a standby take over at its next try instead of waiting out the lease."""
        now = self._clock.now()
        try:
            await self._locks.update_one(
                {"_id": LOCK_ID, "owner": self.worker_id, "term": lease.term},
                {"$set": {"expiresAt": now, "releasedAt": now}},
            )
        except PyMongoError:
            pass  # the lease runs out by itself

    async def is_current(self, term: int) -> bool:
        """Whether `term` is still the live term of this worker, with the same clock-skew margin the leader
        acts by: a lease that another worker's clock may already see expired is not current."""
        doc = await self._locks.find_one({"_id": LOCK_ID})
        return (
            doc is not None
            and doc["term"] == term
            and doc["owner"] == self.worker_id
            and doc["expiresAt"] - self._skew > self._clock.now()
        )

    async def expires_at(self) -> datetime | None:
        """When the recorded lease runs out: a standby sleeps until then instead of polling."""
        doc = await self._locks.find_one({"_id": LOCK_ID}, {"expiresAt": 1})
        return doc["expiresAt"] if doc else None

    async def term(self) -> int | None:
        """The term recorded now (live or not), None before anyone led."""
        doc = await self._locks.find_one({"_id": LOCK_ID}, {"term": 1})
        return doc["term"] if doc else None


# How old the term a late run's check reads may be: late runs within this share one read.
TERM_MAX_AGE = timedelta(seconds=1)


class CurrentTerm:
    """The leader term now, for the launcher's misfire check on any worker: this worker's own while it
    leads (no read), else the recorded one, read at most once a second."""

    def __init__(self, leader_lock: LeaderLock, election, *, clock: Clock):
        self._leader_lock = leader_lock
        self._election = election
        self._clock = clock
        self._term: int | None = None
        self._read_at: datetime | None = None

    async def get(self) -> int | None:
        lease = self._election.lease
        if lease is not None and lease.valid(self._clock.now()):
            return lease.term
        now = self._clock.now()
        if self._read_at is None or not timedelta(0) <= now - self._read_at < TERM_MAX_AGE:
            self._term = await self._leader_lock.term()
            self._read_at = now
        return self._term
