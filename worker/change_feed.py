"""What changed in the database that the schedule must hear about: jobs and executions.

On a replica set this is MongoDB change streams, resumed from the last token after an error. Where the
server says change streams are unsupported (a standalone mongod, code 40573; the in-memory database has
none either), it falls back to polling `updatedAt` plus a periodic full resync. Consumers see the same
events either way; only the delay differs.
"""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import structlog
from bson import ObjectId
from pymongo.errors import ConnectionFailure, CursorNotFound, OperationFailure, PyMongoError

from models.clock import Clock
from models.collections import JOB_EXECUTIONS, SYNC_JOBS

log = structlog.get_logger("syncjobs.worker")

CHANGE_STREAMS_UNSUPPORTED = 40573
# Job events the schedule cares about: creates, deletes, and updates that a user made (they bump version).
# The worker's own status writes leave version alone, so they never come back as events.
JOB_PIPELINE = [
    {
        "$match": {
            "$or": [
                {"operationType": {"$in": ["insert", "replace", "delete"]}},
                {"operationType": "update", "updateDescription.updatedFields.version": {"$exists": True}},
            ]
        }
    },
    {"$project": {"documentKey": 1, "operationType": 1}},
]
# Execution events the dispatcher cares about: new queued runs and cancel requests.
EXECUTION_PIPELINE = [
    {
        "$match": {
            "$or": [
                {"operationType": "insert"},
                {
                    "operationType": "update",
                    "updateDescription.updatedFields.cancelRequestedAt": {"$exists": True},
                },
            ]
        }
    },
    {"$project": {"documentKey": 1, "operationType": 1}},
]


@dataclass(frozen=True)
class Change:
    """`job`: re-read that job. `executions`: look for queued runs and cancels. `resync`: reload all."""

    kind: Literal["job", "executions", "resync"]
    job_id: ObjectId | None = None
    # The job's version where the source knows it (polling): an unchanged version needs no re-read.
    version: int | None = None


class ChangeStreamsUnsupported(Exception):
    pass


def is_unsupported(error: Exception) -> bool:
    if isinstance(error, OperationFailure):
        return error.code == CHANGE_STREAMS_UNSUPPORTED
    # The in-memory database has no watch() at all.
    return isinstance(error, (TypeError, NotImplementedError, AttributeError))


def is_resumable(error: Exception) -> bool:
    if isinstance(error, (ConnectionFailure, CursorNotFound)):
        return True
    return isinstance(error, OperationFailure) and error.has_error_label("ResumableChangeStreamError")


class PollingFeed:
    """Polls jobs changed since the last look, and reloads everything every `resync_seconds`."""

    mode = "polling"
    reason = ""
    # Jobs changed within this window are read again at every poll: a write committed late, or stamped by
    # an API server whose clock runs a little behind, is still seen. Repeats cost a version comparison.
    RECENT_SECONDS = 10.0

    def __init__(
        self, db, *, clock: Clock, poll_seconds: float, resync_seconds: float, since: datetime | None
    ):
        self._jobs = db[SYNC_JOBS]
        self._clock = clock
        self._poll = poll_seconds
        self._resync = resync_seconds
        self._since = since

    def seen(self, updated_at: datetime | None) -> None:
        """Move the high-water mark: the schedule has read jobs changed up to `updated_at`."""
        if updated_at is not None and (self._since is None or updated_at > self._since):
            self._since = updated_at

    def _query(self) -> dict:
        if self._since is None:
            return {}
        recent = self._clock.now() - timedelta(seconds=self.RECENT_SECONDS)
        # Strictly after the mark: thousands of jobs written in one millisecond are not read at every poll.
        return {"updatedAt": {"$gt": min(self._since, recent)}}

    async def changes(self) -> AsyncIterator[Change]:
        waited = 0.0
        while True:
            await self._clock.sleep(self._poll)
            waited += self._poll
            if waited >= self._resync:
                waited = 0.0
                yield Change("resync")
            projection = {"_id": 1, "updatedAt": 1, "version": 1}
            docs = await self._jobs.find(self._query(), projection).sort("updatedAt", 1).to_list(None)
            for doc in docs:
                self.seen(doc.get("updatedAt"))
                yield Change("job", doc["_id"], doc.get("version"))
            yield Change("executions")


class StreamFeed:
    """Two change streams (jobs, executions) merged, each resumed from its last token after an error."""

    mode = "change_streams"

    def __init__(self, db, *, retry_seconds: float = 1.0):
        self._db = db
        self._retry_seconds = retry_seconds
        self._queue: asyncio.Queue[Change | Exception] = asyncio.Queue()

    def seen(self, updated_at: datetime | None) -> None:
        pass

    async def probe(self) -> None:
        """Open a stream once; raises ChangeStreamsUnsupported where the server has none."""
        try:
            stream = await _open(self._db[SYNC_JOBS], JOB_PIPELINE, None)
            await stream.close()
        except (PyMongoError, TypeError, NotImplementedError, AttributeError) as error:
            if not is_unsupported(error):
                raise
            if isinstance(error, OperationFailure):
                raise ChangeStreamsUnsupported(f"the server said: {error.details or error}") from error
            raise ChangeStreamsUnsupported("this database has no change streams (in-memory)") from error

    async def changes(self) -> AsyncIterator[Change]:
        tasks = [
            asyncio.create_task(self._follow(SYNC_JOBS, JOB_PIPELINE, self._job_change)),
            asyncio.create_task(
                self._follow(JOB_EXECUTIONS, EXECUTION_PIPELINE, lambda _: Change("executions"))
            ),
        ]
        try:
            while True:
                item = await self._queue.get()
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            for task in tasks:
                task.cancel()

    @staticmethod
    def _job_change(event: dict) -> Change:
        return Change("job", event["documentKey"]["_id"])

    async def _follow(self, collection: str, pipeline: list[dict], to_change) -> None:
        token = None
        while True:
            try:
                async with await _open(self._db[collection], pipeline, token) as stream:
                    async for event in stream:
                        token = stream.resume_token
                        if event["operationType"] == "invalidate":
                            break
                        await self._queue.put(to_change(event))
                # Invalidated (collection dropped or renamed): start afresh and reload everything.
                token = None
                await self._queue.put(Change("resync"))
            except asyncio.CancelledError:
                raise
            except PyMongoError as error:
                if not is_resumable(error):
                    # History lost (286) or another hard error: reopen fresh and resync instead.
                    log.warning("change_stream_reopened", collection=collection, error=str(error))
                    token = None
                    await self._queue.put(Change("resync"))
                await asyncio.sleep(self._retry_seconds)


async def _open(collection, pipeline: list[dict], token):
    return await collection.watch(pipeline, resume_after=token)


async def open_feed(db, *, clock: Clock, poll_seconds: float, resync_seconds: float, since: datetime | None):
    """Change streams where the server has them, else polling (its `reason` says why)."""
    feed = StreamFeed(db)
    try:
        await feed.probe()
        return feed
    except ChangeStreamsUnsupported as error:
        polling = PollingFeed(
            db, clock=clock, poll_seconds=poll_seconds, resync_seconds=resync_seconds, since=since
        )
        polling.reason = str(error)
        return polling
