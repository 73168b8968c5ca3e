"""The leader's timetable kept in line with the jobs, and its due slots fired.

Jobs are read with the fields the timetable needs; a change is applied in batches (one read for every job
the feed named since the last batch); a job's stored confirmation (`scheduleAppliedVersion`, `nextRunAt`)
is written only when it differs from what the timetable now holds.
"""

import asyncio
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

import structlog
from bson import ObjectId
from pymongo.errors import PyMongoError

from models.clock import Clock
from models.collections import SYNC_JOBS
from models.execution import Trigger, new_execution_document
from models.execution_store import ExecutionStore
from worker.change_feed import Change
from worker.job_status import JobStatusWriter
from worker.paced_writes import Pace
from worker.timetable import GroupKey, Timetable

log = structlog.get_logger("syncjobs.worker")

# Fields of a job the timetable needs; the launcher reads the whole document when it runs one.
SCHEDULE_FIELDS = {
    "schedule": 1,
    "enabled": 1,
    "version": 1,
    "nextRunAt": 1,
    "misfireGraceSeconds": 1,
    "scheduleAppliedVersion": 1,
    "updatedAt": 1,
    "workspaceId": 1,
    "requiredLabel": 1,
}
# The most executions written per insert: a chunk's runs start while the next chunk is written.
INSERT_CHUNK = 500
CHANGE_BATCH = 500
# A chunk that fails is tried again after these pauses (seconds); the lease alone decides when to give up.
CHUNK_BACKOFF = (0.5, 1.0, 2.0, 5.0)

Missed = list[tuple[dict[str, Any], datetime]]


class Firing:
    """Owns the timetable of one term: loads it, applies changes to it, fires what comes due."""

    def __init__(
        self,
        db,
        *,
        clock: Clock,
        store: ExecutionStore,
        status: JobStatusWriter,
        queued,
        acting,
        lost,
    ):
        self._jobs = db[SYNC_JOBS]
        self._clock = clock
        self._store = store
        self._status = status
        # Called once a chunk of slots is written: the dispatchers (this worker's at once, the others' at
        # their next look) claim the runs while the next chunk is written.
        self._queued = queued
        self._acting = acting
        # The exception that ends a term whose lease ran out while it had slots to fire.
        self._lost = lost
        self.timetable = Timetable()
        self._versions: dict[ObjectId, int] = {}
        self._workspaces: dict[ObjectId, str] = {}
        self._labels: dict[ObjectId, str] = {}  # the jobs that require a worker label
        self.changed = asyncio.Event()
        self.confirming: asyncio.Task | None = None
        # Chunk sizes of the executions this worker writes, learned across terms (worker.paced_writes).
        self.pace = Pace(largest=INSERT_CHUNK)
        # A job's stored nextRunAt is where the next leader starts looking for slots nobody recorded, so it
        # never moves past a slot without a record. Jobs whose missed slots catch-up has not written yet
        # keep theirs until it has (Recovery.catch_up calls `caught_up`); a group's slot popped from the
        # timetable counts as its next until its executions are written.
        self.awaiting_catch_up: set[ObjectId] = set()
        self._popped: dict[GroupKey, datetime] = {}

    def reset(self) -> None:
        """The term is over: the next one loads everything afresh."""
        if self.confirming is not None:
            self.confirming.cancel()
            self.confirming = None
        self.timetable = Timetable()
        self._versions.clear()
        self._workspaces.clear()
        self._labels.clear()
        self.awaiting_catch_up.clear()
        self._popped.clear()

    async def load_all(self, term: int) -> tuple[datetime | None, datetime, Missed]:
        """Load every job at once. Returns the newest `updatedAt` seen (where polling starts), the moment
        the timetable starts from, and the jobs whose planned slot passed while no one fired it."""
        now = self._clock.now()
        docs = await self._jobs.find({}, SCHEDULE_FIELDS).to_list(None)
        missed = await self._apply_jobs(docs, removed=[], term=term, now=now, loading=True)
        log.info(
            "schedule_loaded",
            jobs=len(self.timetable),
            load_ms=int((self._clock.now() - now).total_seconds() * 1000),
        )
        since = max((doc["updatedAt"] for doc in docs if doc.get("updatedAt")), default=None)
        return since, now, missed

    async def follow(self, feed, term: int, on_change) -> None:
        """Apply what the feed reports, in batches: everything it named since the last batch, at once."""
        pending: asyncio.Queue[Change] = asyncio.Queue()

        async def listen() -> None:
            async for change in feed.changes():
                await pending.put(change)

        listener = asyncio.create_task(listen(), name="feed-listener")
        try:
            while True:
                getting = asyncio.ensure_future(pending.get())
                done, _ = await asyncio.wait({getting, listener}, return_when=asyncio.FIRST_COMPLETED)
                if listener in done:
                    getting.cancel()
                    listener.result()  # the feed's error ends the term; its end too
                    return
                batch = [getting.result()]
                while not pending.empty() and len(batch) < CHANGE_BATCH:
                    batch.append(pending.get_nowait())
                await self.apply_changes(batch, term)
                on_change()
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)

    async def apply_changes(self, changes: list[Change], term: int) -> None:
        if any(change.kind == "resync" for change in changes):
            await self.resync(term)
            return
        job_ids = {
            change.job_id
            for change in changes
            if change.kind == "job"
            and (change.version is None or self._versions.get(change.job_id) != change.version)
        }
        if not job_ids:
            return
        await self._reread(job_ids, removed=set(), term=term)

    async def _reread(self, job_ids: set[ObjectId], *, removed: set[ObjectId], term: int) -> None:
        """Read these jobs' schedule fields and apply them; one not found any more is removed."""
        docs = (
            await self._jobs.find({"_id": {"$in": list(job_ids)}}, SCHEDULE_FIELDS).to_list(None)
            if job_ids
            else []
        )
        gone = removed | (job_ids - {doc["_id"] for doc in docs})
        await self._apply_jobs(docs, removed=list(gone), term=term, now=self._clock.now())

    async def apply_change(self, change: Change, term: int) -> None:
        await self.apply_changes([change], term)

    async def resync(self, term: int) -> None:
        """Compare every job's version with the timetable's and re-read only the jobs that differ: a resync
        that finds nothing new reads two fields a job (on the in-memory database, a third less work than
        the schedule's fields; the resync is most of an idle worker's CPU there)."""
        versions = await self._jobs.find({}, {"version": 1}).to_list(None)
        present = {doc["_id"] for doc in versions}
        removed = {job_id for job_id in self._versions if job_id not in present}
        changed = {doc["_id"] for doc in versions if self._versions.get(doc["_id"]) != doc.get("version")}
        if len(changed) > CHANGE_BATCH:
            # Many changed (a bulk edit by hand): one read of everything beats a long list of ids.
            docs = await self._jobs.find({}, SCHEDULE_FIELDS).to_list(None)
            fresh = {doc["_id"] for doc in docs}
            gone = [job_id for job_id in self._versions if job_id not in fresh]
            await self._apply_jobs(docs, removed=gone, term=term, now=self._clock.now())
        else:
            await self._reread(changed, removed=removed, term=term)

    async def _apply_jobs(
        self,
        docs: list[dict[str, Any]],
        *,
        removed: list[ObjectId],
        term: int,
        now: datetime,
        loading: bool = False,
    ) -> Missed:
        """Bring the timetable in line with these job documents; only a changed version counts as a
        change. Returns, when loading, the jobs whose planned slot has passed."""
        for job_id in removed:
            self.timetable.remove(job_id)
            self._versions.pop(job_id, None)
            self._workspaces.pop(job_id, None)
            self._labels.pop(job_id, None)
        # (version, group or None when disabled) -> jobs whose stored confirmation is stale
        applied: dict[tuple[int, GroupKey | None], list[ObjectId]] = {}
        missed: Missed = []
        for doc in docs:
            job_id, version = doc["_id"], doc["version"]
            if self._versions.get(job_id) == version:
                continue
            self._versions[job_id] = version
            self._workspaces[job_id] = doc["workspaceId"]
            if doc.get("requiredLabel"):
                self._labels[job_id] = doc["requiredLabel"]
            else:
                self._labels.pop(job_id, None)
            if doc.get("enabled"):
                try:
                    group = (doc["schedule"]["cron"], doc["schedule"]["timezone"])
                    next_run = self.timetable.put(job_id, *group, now)
                except (KeyError, TypeError, ValueError, ZoneInfoNotFoundError) as error:
                    # A document edited by hand into nonsense stops that job, never the timetable.
                    log.error("job_schedule_invalid", job_id=str(job_id), error=repr(error))
                    self.timetable.remove(job_id)
                    continue
                first_missed = doc.get("nextRunAt")
                if loading and first_missed is not None and first_missed <= now:
                    missed.append((doc, first_missed))
                    self.awaiting_catch_up.add(job_id)
                if job_id in self.awaiting_catch_up:
                    continue  # confirmed by `caught_up`, once its missed slots have their records
            else:
                self.timetable.remove(job_id)
                group, next_run = None, None
            if doc.get("scheduleAppliedVersion") != version or doc.get("nextRunAt") != next_run:
                applied.setdefault((version, group), []).append(job_id)
        if loading:
            # A full load confirms thousands of jobs: that bookkeeping runs beside the timetable, which is
            # ready to fire already, instead of holding it up.
            self.confirming = asyncio.create_task(
                self._confirm_applied(applied, now, term), name="confirm-applied"
            )
        else:
            await self._confirm_applied(applied, now, term)
        self.changed.set()
        return missed

    async def _confirm_applied(
        self, applied: dict[tuple[int, GroupKey | None], list[ObjectId]], now: datetime, term: int
    ) -> None:
        """Write scheduleAppliedVersion and nextRunAt: one write per (version, next fire time), the next fire
        time read from the timetable right before its write, so a slot fired meanwhile is not written back."""

        next_of = self._stored_next

        planned: dict[tuple[int, datetime | None], list[tuple[GroupKey | None, list[ObjectId]]]] = {}
        for (version, group), job_ids in applied.items():
            planned.setdefault((version, next_of(group)), []).append((group, job_ids))
        for (version, _), members in planned.items():
            current: dict[datetime | None, list[ObjectId]] = {}
            for group, job_ids in members:
                current.setdefault(next_of(group), []).extend(job_ids)
            for next_run, job_ids in current.items():
                await self._status.schedule_applied(job_ids, version, next_run, now, term)
            await asyncio.sleep(0)  # let a due slot fire between two writes

    def _stored_next(self, group: GroupKey | None) -> datetime | None:
        """The nextRunAt to store for a group's jobs: the timetable's, or the slot popped but not yet
        written."""
        if group is None:
            return None
        popped = self._popped.get(group)
        upcoming = self.timetable.group_next(group)
        return popped if popped is not None and (upcoming is None or popped < upcoming) else upcoming

    async def caught_up(self, job_ids: list[ObjectId], term: int) -> None:
        """Catch-up has written the records of these jobs' missed slots: their stored schedule may move on."""
        applied: dict[tuple[int, GroupKey | None], list[ObjectId]] = {}
        for job_id in job_ids:
            self.awaiting_catch_up.discard(job_id)
            if job_id in self._versions:  # not deleted meanwhile
                group = self.timetable.group_of(job_id)
                applied.setdefault((self._versions[job_id], group), []).append(job_id)
        await self._confirm_applied(applied, self._clock.now(), term)

    async def fire_loop(self, term: int) -> None:
        while True:
            next_fire = self.timetable.next_fire()
            now = self._clock.now()
            if next_fire is None or next_fire > now:
                wait = (next_fire - now).total_seconds() if next_fire else 3600.0
                sleeper = asyncio.ensure_future(self._clock.sleep(wait))
                waker = asyncio.ensure_future(self.changed.wait())
                try:
                    await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    sleeper.cancel()
                    waker.cancel()
                self.changed.clear()
                continue
            await self.fire_due(term)
            # Every pass yields, whatever the database did: the mock never does, and a loop that does not
            # yield starves the lease renewal, the API and the stop signal.
            await asyncio.sleep(0)

    async def fire_due(self, term: int) -> int:
        """Write an execution for every job due now, in chunks of at most INSERT_CHUNK (sized by
        `pace`), and hand each chunk to the dispatchers as soon as it is written; then one status write per
        distinct next fire time. Returns how many were written.

        Nothing is read here: the timetable is what the feed last said. A job edited, disabled or deleted
        in the moment before its slot is caught by the launcher, which reads the job before it runs it."""
        if not self._acting(term):
            # The slots fall to the next leader's misfire handling; this term is over.
            raise self._lost("the lease ran out with slots due")
        now = self._clock.now()
        executions, by_next = [], {}
        popped: list[GroupKey] = []
        for slot, key, job_ids in self.timetable.pop_due(now):
            self._popped.setdefault(key, slot)
            popped.append(key)
            for job_id in job_ids:
                job = {
                    "_id": job_id,
                    "workspaceId": self._workspaces[job_id],
                    "requiredLabel": self._labels.get(job_id),
                }
                execution = new_execution_document(
                    job=job, trigger=Trigger.SCHEDULE, scheduled_for=slot, now=now
                )
                execution["firedTerm"] = term
                executions.append(execution)
            by_next.setdefault(self.timetable.group_next(key), []).extend(
                job_id for job_id in job_ids if job_id not in self.awaiting_catch_up
            )
        written = 0
        for chunk in self.pace.chunks(executions):
            with self.pace.timed(len(chunk)):
                written += len(await self.queue_chunk(chunk, term))
            self._queued()
            await asyncio.sleep(0)
        for key in popped:
            self._popped.pop(key, None)
        for next_run, job_ids in by_next.items():
            if job_ids:
                await self._status.next_run(job_ids, next_run, term)
        return written

    async def queue_chunk(self, chunk: list[dict[str, Any]], term: int) -> list[dict[str, Any]]:
        """Insert one chunk, retried with backoff while the lease holds: a re-insert is harmless (the unique
        index drops what landed), and a slow database is no reason to give up the lease."""
        for pause in (*CHUNK_BACKOFF, None):
            try:
                return await self._store.queue(chunk)
            except PyMongoError as error:
                if pause is None or not self._acting(term):
                    raise
                log.warning("executions_insert_failed", count=len(chunk), error=str(error), retry_in=pause)
                await self._clock.sleep(pause)
        raise AssertionError("unreachable")
