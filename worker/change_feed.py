"""What changed in the database that the schedule must hear about: jobs and executions.

On a replica set this is MongoDB change streams, resumed from the last token after an error. Where the
server answers that it has none (a standalone mongod, DocumentDB without them, Cosmos DB, FerretDB, a
wire-protocol test server; the in-memory database has none either), it falls back to polling `updatedAt`
plus a periodic full resync. Consumers see the same events either way; only the delay differs.
`RELOAD_MODE` chooses: `auto` (that), `change_streams` (required) or `polling`.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import structlog
from bson import ObjectId
from pymongo.errors import ConnectionFailure, CursorNotFound, OperationFailure

from models.clock import Clock
from models.collections import JOB_EXECUTIONS, SYNC_JOBS
from models.driver import ChangeStreamsUnavailable, open_change_stream
from models.errors import SyncJobsError
from models.job_changes import JobChangeMark

log = structlog.get_logger("syncjobs.worker")

# Server answers at open that mean "no change streams here", whatever the server.
UNAVAILABLE_CODES = {
    40573: "only supported on replica sets",
    40324: "unrecognized pipeline stage",
    115: "command not supported",
    136: "change streams not enabled",
}
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


class ChangeStreamsRequired(SyncJobsError):
    """RELOAD_MODE=change_streams, but this database has none: set RELOAD_MODE=auto or polling."""


def says_unavailable(error: Exception) -> bool:
    """Whether an error at open is the server saying it has no change streams (not a bug of ours, not an
    outage): only these switch to polling."""
    if isinstance(error, ChangeStreamsUnavailable):
        return True
    if isinstance(error, OperationFailure):
        return error.code in UNAVAILABLE_CODES or "$changeStream" in str(error)
    return False


def is_resumable(error: Exception) -> bool:
    if isinstance(error, (ConnectionFailure, CursorNotFound)):
        return True
    return isinstance(error, OperationFailure) and error.has_error_label("ResumableChangeStreamError")


class PollingFeed:
    """Polls jobs changed since the last look, and reloads everything every `resync_seconds`.

    Each poll first reads the jobs' change mark (models/job_changes.py): one document by _id. The jobs
    are read, through the `updatedAt` index, only when it moved since the last poll, so an idle worker's
    polls cost the same with ten jobs or ten thousand, even on a database that scans (the in-memory one)."""

    mode = "polling"
    reason = ""
    # Jobs changed within this window are read again whenever the jobs are read: a write committed late, or
    # stamped by an API server whose clock runs a little behind, is still seen. Repeats cost a version
    # comparison.
    RECENT_SECONDS = 10.0

    def __init__(
        self, db, *, clock: Clock, poll_seconds: float, resync_seconds: float, since: datetime | None
    ):
        self._jobs = db[SYNC_JOBS]
        self._marks = JobChangeMark(db)
        self._clock = clock
        self._poll = poll_seconds
        self._resync = resync_seconds
        self._since = since
        # The change mark the last read of the jobs followed; None: the jobs were not read yet.
        self._read_at_mark: int | None = None

    def seen(self, updated_at: datetime | None) -> None:
        """Move the high-water mark: the schedule has read jobs changed up to `updated_at`."""
        if updated_at is not None and (self._since is None or updated_at > self._since):
            self._since = updated_at

    async def mark_loaded(self) -> None:
        """Take the change mark as it stands as read: called before the schedule loads every job, so only
        edits marked after this need a poll to read them."""
        self._read_at_mark = await self._marks.current()

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
            mark = await self._marks.current()
            if mark != self._read_at_mark:
                # Read before the jobs: an edit marked after this read is looked for again at the next poll.
                self._read_at_mark = mark
                for doc in await self._changed_jobs():
                    self.seen(doc.get("updatedAt"))
                    yield Change("job", doc["_id"], doc.get("version"))
            yield Change("executions")

    async def _changed_jobs(self) -> list[dict]:
        projection = {"_id": 1, "updatedAt": 1, "version": 1}
        return await self._jobs.find(self._query(), projection).sort("updatedAt", 1).to_list(None)


class StreamFeed:
    """Two change streams (jobs, executions) merged, each resumed from its last token after an error."""

    mode = "change_streams"

    # A follower that keeps failing waits longer each time, up to this: it never spins.
    MAX_RETRY_SECONDS = 30.0

    def __init__(self, db, *, retry_seconds: float = 1.0):
        self._db = db
        self._retry_seconds = retry_seconds
        self._queue: asyncio.Queue[Change | Exception] = asyncio.Queue()

    def seen(self, updated_at: datetime | None) -> None:
        pass

    async def probe(self) -> None:
        """Open a stream once; raises ChangeStreamsUnavailable where the server has none. Any other error
        (an outage, a bug of ours) goes up as it is: it never passes for "unavailable"."""
        try:
            stream = await open_change_stream(self._db[SYNC_JOBS], JOB_PIPELINE, resume_after=None)
        except OperationFailure as error:
            if not says_unavailable(error):
                raise
            said = (error.details or {}).get("errmsg") or str(error)
            raise ChangeStreamsUnavailable(f"the server has no change streams: {said}") from error
        await stream.close()

    async def changes(self, *, jobs: bool = True) -> AsyncIterator[Change]:
        """Job and execution changes merged; with `jobs=False`, the executions' only (queued runs, cancel
        requests: what every worker's dispatcher wakes on)."""
        tasks = [
            asyncio.create_task(
                self._follow(JOB_EXECUTIONS, EXECUTION_PIPELINE, lambda _: Change("executions"))
            )
        ]
        if jobs:
            tasks.append(asyncio.create_task(self._follow(SYNC_JOBS, JOB_PIPELINE, self._job_change)))
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
        failures = 0
        while True:
            try:
                async with await open_change_stream(
                    self._db[collection], pipeline, resume_after=token
                ) as stream:
                    async for event in stream:
                        failures = 0
                        token = stream.resume_token
                        if event["operationType"] == "invalidate":
                            break
                        await self._queue.put(to_change(event))
                # Invalidated (collection dropped or renamed): start afresh and reload everything.
                token = None
                await self._queue.put(Change("resync"))
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # Whatever failed (the server, the driver, a bug of ours), the follower says so and goes on:
                # a follower that died quietly would leave the schedule deaf to every edit.
                failures += 1
                if not is_resumable(error):
                    # History lost (286) or another hard error: reopen fresh and resync instead.
                    log.warning("change_stream_reopened", collection=collection, error=repr(error))
                    token = None
                    await self._queue.put(Change("resync"))
                await asyncio.sleep(self.retry_delay(failures))

    def retry_delay(self, failures: int) -> float:
        """Seconds before reopening after `failures` failures in a row: doubling, capped."""
        return min(self.MAX_RETRY_SECONDS, self._retry_seconds * 2 ** (failures - 1))


async def open_feed(
    db,
    *,
    clock: Clock,
    poll_seconds: float,
    resync_seconds: float,
    since: datetime | None,
    mode: str = "auto",
):
    """The feed RELOAD_MODE asks for: `auto` is change streams where the server has them, else polling (its
    `reason` says why). `change_streams` raises ChangeStreamsRequired where there are none."""

    async def polling(reason: str) -> PollingFeed:
        feed = PollingFeed(
            db, clock=clock, poll_seconds=poll_seconds, resync_seconds=resync_seconds, since=since
        )
        feed.reason = reason
        # The feed is opened before the schedule loads every job (worker/scheduler.py).
        await feed.mark_loaded()
        return feed

    if mode == "polling":
        return await polling("RELOAD_MODE=polling")
    feed = StreamFeed(db)
    try:
        await feed.probe()
    except ChangeStreamsUnavailable as error:
        if mode == "change_streams":
            raise ChangeStreamsRequired(f"{ChangeStreamsRequired.__doc__} ({error})") from error
        return await polling(str(error))
    log.info("change_streams_followed")
    return feed


async def watch_queue(db, wake: Callable[[], None], *, mode: str = "auto") -> None:
    """Every worker, leading or not: wake its dispatcher when a run is queued or a cancel is requested,
    within moments, by change stream. Where the server has none (or RELOAD_MODE=polling), this returns at
    once and the dispatcher's poll is what finds them."""
    if mode == "polling":
        return
    feed = StreamFeed(db)
    try:
        await feed.probe()
    except ChangeStreamsUnavailable:
        return
    async for _ in feed.changes(jobs=False):
        wake()
