"""The scheduler: elects a leader, and while leading, fires due slots, follows changes and dispatches runs."""

import asyncio
import random
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

import structlog
from bson import ObjectId
from pymongo.errors import BulkWriteError, PyMongoError

from executor.outcome import Runner
from models.clock import Clock
from models.collections import JOB_EXECUTIONS, SYNC_JOBS
from models.execution import ExecutionStatus, Trigger, finished_fields, new_execution_document
from models.settings import Settings
from worker import metrics
from worker.change_feed import Change, open_feed
from worker.identity import new_worker_id
from worker.job_lock import JobLocks
from worker.job_status import JobStatusWriter
from worker.launcher import Launcher
from worker.leader_lock import LeaderLock, Lease
from worker.misfires import classify_missed
from worker.naps import nap
from worker.schedule import Schedule

log = structlog.get_logger("syncjobs.worker")

# Fields of a job the schedule needs; the launcher reads the whole document when it runs one.
SCHEDULE_FIELDS = {
    "schedule": 1,
    "enabled": 1,
    "version": 1,
    "nextRunAt": 1,
    "misfireGraceSeconds": 1,
    "scheduleAppliedVersion": 1,
    "updatedAt": 1,
    "workspaceId": 1,
}
DUPLICATE_KEY = 11000
DISPATCH_BATCH = 500


class LeadershipLost(Exception):
    pass


class Scheduler:
    def __init__(
        self,
        *,
        db,
        runner: Runner,
        clock: Clock,
        settings: Settings,
        worker_id: str | None = None,
        feed_factory=open_feed,
        rng: random.Random | None = None,
        max_concurrent: int | None = None,
    ):
        self.worker_id = worker_id or new_worker_id()
        self._db = db
        self._jobs = db[SYNC_JOBS]
        self._executions = db[JOB_EXECUTIONS]
        self._clock = clock
        self._settings = settings
        self._feed_factory = feed_factory
        self.leader_lock = LeaderLock(
            db,
            worker_id=self.worker_id,
            clock=clock,
            lease_seconds=settings.worker_lease_seconds,
            skew_seconds=settings.worker_clock_skew_seconds,
        )
        self.job_locks = JobLocks(
            db, worker_id=self.worker_id, clock=clock, ttl_seconds=settings.job_lock_ttl_seconds
        )
        self.launcher = Launcher(
            db,
            runner=runner,
            clock=clock,
            settings=settings,
            job_locks=self.job_locks,
            leader_lock=self.leader_lock,
            rng=rng,
            max_concurrent=max_concurrent,
            may_launch=self.acting,
            on_freed=lambda: self._dispatch_wake.set(),
        )
        self._status = JobStatusWriter(db)
        self._bookkeeping: asyncio.Task | None = None
        self._said_polling = False
        self.schedule = Schedule()
        self._versions: dict[ObjectId, int] = {}
        self._workspaces: dict[ObjectId, str] = {}
        self.lease: Lease | None = None
        self._schedule_changed = asyncio.Event()
        self._dispatch_wake = asyncio.Event()
        self.leading = asyncio.Event()  # for tests and health: set while this worker leads

    # -- election ------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set: lead when the lock is free, stand by otherwise. Then shut down cleanly."""
        with structlog.contextvars.bound_contextvars(worker_id=self.worker_id):
            log.info("worker_started")
            while not stop.is_set():
                try:
                    lease = await self.leader_lock.acquire()
                except PyMongoError as error:
                    log.warning("lock_acquire_failed", error=str(error))
                    lease = None
                if lease is not None:
                    await self._lead(lease, stop)
                if not stop.is_set():
                    await nap(self._clock, stop, self._settings.renew_seconds, consume=False)
            await self._shutdown()

    def acting(self) -> bool:
        """Whether this worker may fire or launch right now."""
        return self.lease is not None and self.lease.valid(self._clock.now())

    async def _lead(self, lease: Lease, stop: asyncio.Event) -> None:
        self.lease = lease
        self.leading.set()
        log.info("lock_acquired", term=lease.term)
        tasks = [
            asyncio.create_task(self._keep_lease(), name="keep-lease"),
            asyncio.create_task(self._follow_schedule(lease.term), name="schedule"),
            asyncio.create_task(stop.wait(), name="stop"),
        ]
        lost = False
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    error = task.exception()
                    if isinstance(error, LeadershipLost):
                        lost = True
                        log.warning("lock_lost", term=lease.term, reason=str(error))
                    else:
                        log.error("leadership_ended_by_error", error=repr(error), exc_info=error)
        finally:
            # Losing the lock stops every timer and watcher of the schedule at once.
            self.lease = None
            self.leading.clear()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.schedule = Schedule()
            self._versions.clear()
            self._workspaces.clear()
        if stop.is_set():
            await self.launcher.drain(self._settings.shutdown_grace_seconds)
        if not lost:
            # Stopping, or an error ended this leadership: hand over now rather than after the lease.
            await self.leader_lock.release(lease)
            log.info("lock_released", term=lease.term)

    async def _keep_lease(self) -> None:
        while True:
            lease = self.lease
            now = self._clock.now()
            remaining = (lease.acts_until - now).total_seconds()
            await self._clock.sleep(min(self._settings.renew_seconds, max(remaining, 0)))
            if not lease.valid(self._clock.now()):
                raise LeadershipLost("the lease ran out before it could be renewed")
            try:
                renewed = await asyncio.wait_for(
                    self.leader_lock.renew(lease),
                    timeout=max(0.1, (lease.acts_until - self._clock.now()).total_seconds()),
                )
            except (PyMongoError, TimeoutError) as error:
                metrics.LEASE_RENEWAL_FAILURES.inc()
                log.warning("lock_renewal_failed", error=str(error) or type(error).__name__)
                continue
            if renewed is None:
                raise LeadershipLost("another worker holds the lock")
            self.lease = renewed

    # -- the schedule --------------------------------------------------------------------------------

    async def _follow_schedule(self, term: int) -> None:
        feed = await self._feed_factory(
            self._db,
            clock=self._clock,
            poll_seconds=self._settings.poll_interval_seconds,
            resync_seconds=self._settings.resync_interval_seconds,
            since=None,
        )
        self.reload_mode = feed.mode  # read by the heartbeat (worker/heartbeat.py)
        if feed.mode == "polling" and not self._said_polling:
            self._said_polling = True  # once per process: every new term would otherwise say it again
            log.info(
                "change_streams_unsupported_polling",
                reason=feed.reason,
                poll_seconds=self._settings.poll_interval_seconds,
            )
        since = await self.load_all(term)
        feed.seen(since)
        await self.recover_abandoned(term)
        tasks = [
            asyncio.create_task(self._fire_loop(term), name="fire"),
            asyncio.create_task(self._dispatch_loop(term), name="dispatch"),
            asyncio.create_task(self._consume(feed, term), name="feed"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            if self._bookkeeping is not None:
                tasks.append(self._bookkeeping)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _consume(self, feed, term: int) -> None:
        async for change in feed.changes():
            await self.apply_change(change, term)

    async def apply_change(self, change: Change, term: int) -> None:
        if change.kind == "job":
            if change.version is not None and self._versions.get(change.job_id) == change.version:
                return
            doc = await self._jobs.find_one({"_id": change.job_id}, SCHEDULE_FIELDS)
            await self._apply_jobs([doc] if doc else [], removed=[] if doc else [change.job_id])
        elif change.kind == "resync":
            await self.resync()
        self._dispatch_wake.set()

    async def load_all(self, term: int) -> datetime | None:
        """Load every job into the schedule at once; handle slots missed while no one led. Returns the newest
        `updatedAt` seen, where polling starts."""
        now = self._clock.now()
        docs = await self._jobs.find({}, SCHEDULE_FIELDS).to_list(None)
        await self._apply_jobs(docs, removed=[], catch_up=True, term=term)
        log.info(
            "schedule_loaded",
            jobs=len(self.schedule),
            load_ms=int((self._clock.now() - now).total_seconds() * 1000),
        )
        return max((doc["updatedAt"] for doc in docs if doc.get("updatedAt")), default=None)

    async def resync(self) -> None:
        docs = await self._jobs.find({}, SCHEDULE_FIELDS).to_list(None)
        present = {doc["_id"] for doc in docs}
        await self._apply_jobs(docs, removed=[job_id for job_id in self._versions if job_id not in present])

    async def _apply_jobs(
        self,
        docs: list[dict[str, Any]],
        *,
        removed: list[ObjectId],
        catch_up: bool = False,
        term: int | None = None,
    ) -> None:
        """Bring the schedule in line with these job documents; only a changed version counts as a change."""
        now = self._clock.now()
        for job_id in removed:
            self.schedule.remove(job_id)
            self._versions.pop(job_id, None)
            self._workspaces.pop(job_id, None)
        # (version, schedule group or None when disabled) -> jobs whose stored confirmation is stale
        applied: dict[tuple[int, tuple[str, str] | None], list[ObjectId]] = {}
        missed: list[tuple[dict[str, Any], datetime]] = []
        for doc in docs:
            job_id, version = doc["_id"], doc["version"]
            if self._versions.get(job_id) == version:
                continue
            self._versions[job_id] = version
            self._workspaces[job_id] = doc["workspaceId"]
            if doc.get("enabled"):
                try:
                    group = (doc["schedule"]["cron"], doc["schedule"]["timezone"])
                    next_run = self.schedule.put(job_id, *group, now)
                except (KeyError, TypeError, ValueError, ZoneInfoNotFoundError) as error:
                    # A document edited by hand into nonsense stops that job, never the schedule.
                    log.error("job_schedule_invalid", job_id=str(job_id), error=repr(error))
                    self.schedule.remove(job_id)
                    continue
                first_missed = doc.get("nextRunAt")
                if catch_up and first_missed is not None and first_missed <= now:
                    missed.append((doc, first_missed))
            else:
                self.schedule.remove(job_id)
                group, next_run = None, None
            if doc.get("scheduleAppliedVersion") != version or doc.get("nextRunAt") != next_run:
                applied.setdefault((version, group), []).append(job_id)
        if catch_up:
            # A full load confirms thousands of jobs: that bookkeeping runs beside the schedule, which is
            # ready to fire already, instead of holding it up.
            self._bookkeeping = asyncio.create_task(
                self._confirm_applied(applied, now), name="confirm-applied"
            )
        else:
            await self._confirm_applied(applied, now)
        if missed and term is not None:
            await self._catch_up(missed, term, now)
        self._schedule_changed.set()

    async def _confirm_applied(self, applied: dict[tuple[int, tuple[str, str] | None], list[ObjectId]], now):
        """Write scheduleAppliedVersion and nextRunAt: one write per (version, next fire time), the next fire
        time read from the schedule right before its write, so a slot fired meanwhile is not written back."""

        def next_of(group):
            return self.schedule.group_next(group) if group else None

        planned: dict[tuple[int, datetime | None], list[tuple[tuple[str, str] | None, list[ObjectId]]]] = {}
        for (version, group), job_ids in applied.items():
            planned.setdefault((version, next_of(group)), []).append((group, job_ids))
        for (version, _), members in planned.items():
            current: dict[datetime | None, list[ObjectId]] = {}
            for group, job_ids in members:
                current.setdefault(next_of(group), []).extend(job_ids)
            for next_run, job_ids in current.items():
                await self._status.schedule_applied(job_ids, version, next_run, now)
            await asyncio.sleep(0)  # let a due slot fire between two writes

    async def _catch_up(
        self, missed: list[tuple[dict[str, Any], datetime]], term: int, now: datetime
    ) -> None:
        """Slots that came due while no leader fired: the newest runs once if within grace; older ones are
        recorded as one skipped execution, so every slot's fate can be read back."""
        to_run: list[dict[str, Any]] = []
        skipped: list[dict[str, Any]] = []
        for doc, first_missed in missed:
            schedule = doc["schedule"]
            misfire = classify_missed(
                schedule["cron"], schedule["timezone"], first_missed, now, doc.get("misfireGraceSeconds", 300)
            )
            if misfire is None:
                continue
            if misfire.skipped_count:
                record = new_execution_document(
                    job=doc, trigger=Trigger.SCHEDULE, scheduled_for=misfire.first_skipped, now=now
                )
                record.update(
                    finished_fields(ExecutionStatus.SKIPPED, now, self._settings.execution_retention_days)
                )
                record["reason"] = "missed"
                record["missed"] = {
                    "count": misfire.skipped_count,
                    "firstSlot": misfire.first_skipped,
                    "lastSlot": misfire.last_skipped,
                }
                skipped.append(record)
                log.info("slots_missed", job_id=str(doc["_id"]), count=misfire.skipped_count)
            if misfire.run_slot is not None:
                to_run.append(
                    new_execution_document(
                        job=doc, trigger=Trigger.SCHEDULE, scheduled_for=misfire.run_slot, now=now
                    )
                )
        await self._insert_ignoring_duplicates(skipped)
        for execution in await self._insert_ignoring_duplicates(to_run):
            self.launcher.submit(execution, term)

    async def _fire_loop(self, term: int) -> None:
        while True:
            next_fire = self.schedule.next_fire()
            now = self._clock.now()
            if next_fire is None or next_fire > now:
                wait = (next_fire - now).total_seconds() if next_fire else 3600.0
                await nap(self._clock, self._schedule_changed, wait)
                continue
            await self.fire_due(term)

    async def fire_due(self, term: int) -> int:
        """Write an execution for every job due now and launch them: one insert, and one status write per
        distinct next fire time, however many groups and jobs are due. Returns how many were written.

        Nothing is read here: the schedule is what the feed last said. A job edited, disabled or deleted
        in the moment before its slot is caught by the launcher, which reads the job before it runs it."""
        if not self.acting():
            return 0  # the slots fall to the next leader's misfire handling
        now = self._clock.now()
        executions, by_next = [], {}
        for slot, key, job_ids in self.schedule.pop_due(now):
            for job_id in job_ids:
                job = {"_id": job_id, "workspaceId": self._workspaces[job_id]}
                executions.append(
                    new_execution_document(job=job, trigger=Trigger.SCHEDULE, scheduled_for=slot, now=now)
                )
            by_next.setdefault(self.schedule.group_next(key), []).extend(job_ids)
        written = await self._insert_ignoring_duplicates(executions)
        for execution in written:
            self.launcher.submit(execution, term)
        for next_run, job_ids in by_next.items():
            await self._status.next_run(job_ids, next_run)
        return len(written)

    async def _insert_ignoring_duplicates(self, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Insert executions; one that exists already (another leader wrote that slot) is not an error."""
        if not docs:
            return []
        try:
            await self._executions.insert_many(docs, ordered=False)
            return docs
        except BulkWriteError as error:
            failed = {
                item["index"]
                for item in error.details.get("writeErrors", [])
                if item.get("code") == DUPLICATE_KEY
            }
            others = [
                item for item in error.details.get("writeErrors", []) if item.get("code") != DUPLICATE_KEY
            ]
            if others:
                raise
            return [doc for index, doc in enumerate(docs) if index not in failed]

    # -- queued runs, cancel requests, recovery ------------------------------------------------------

    async def _dispatch_loop(self, term: int) -> None:
        last_recovery = self._clock.now()
        while True:
            await self.dispatch(term)
            # Recovery runs on its own timer, so that it happens with change streams too, which never resync.
            if (self._clock.now() - last_recovery).total_seconds() >= self._settings.resync_interval_seconds:
                last_recovery = self._clock.now()
                await self.recover_abandoned(term)
            await nap(self._clock, self._dispatch_wake, self._settings.poll_interval_seconds)

    async def dispatch(self, term: int) -> None:
        """Start queued runs that are due (manual runs, retries, runs waiting for their job's lock), and pass
        cancel requests on to the runs of this worker."""
        if not self.acting():
            return
        now = self._clock.now()
        in_flight = self.launcher.in_flight
        queued = await (
            self._executions.find({"status": ExecutionStatus.QUEUED.value, "runAfter": {"$lte": now}})
            .sort([("runAfter", 1), ("_id", 1)])
            .limit(DISPATCH_BATCH)
            .to_list(None)
        )
        for execution in queued:
            if execution["_id"] not in in_flight and self.acting():
                self.launcher.submit(execution, term)
        running_here = list(self.launcher.running)
        if running_here:
            requested = await self._executions.find(
                {"_id": {"$in": running_here}, "cancelRequestedAt": {"$ne": None}}, {"_id": 1}
            ).to_list(None)
            for doc in requested:
                self.launcher.cancel(doc["_id"], "cancel requested")

    async def recover_abandoned(self, term: int) -> int:
        """Executions left `running` whose job lock has lapsed and that this worker is not running: their
        worker died (or a run of ours failed to record its end). They become `abandoned` (and are retried if
        the job allows), so nothing stays running forever. Then the outcomes a deposed leader recorded but
        could not commit. Returns how many executions were recovered."""
        now = self._clock.now()
        candidates = await self._executions.find({"status": ExecutionStatus.RUNNING.value}).to_list(None)
        candidates = [doc for doc in candidates if doc["_id"] not in self.launcher.running]
        live = (
            await self.job_locks.live_execution_ids([doc["_id"] for doc in candidates], now)
            if candidates
            else set()
        )
        recovered = 0
        for execution in candidates:
            if execution["_id"] in live:
                continue
            result = await self._executions.update_one(
                {"_id": execution["_id"], "status": ExecutionStatus.RUNNING.value},
                {
                    "$set": {
                        **finished_fields(
                            ExecutionStatus.ABANDONED, now, self._settings.execution_retention_days
                        ),
                        "error": "its worker stopped renewing the job lock (crashed or cut off)",
                        "outcomeCommitted": False,
                    }
                },
            )
            if result.modified_count:
                recovered += 1
                log.warning(
                    "execution_abandoned", execution_id=str(execution["_id"]), job_id=str(execution["jobId"])
                )
        uncommitted = await self._executions.find(
            {"outcomeCommitted": False, "$or": [{"lockTerm": {"$lt": term}}, {"status": "abandoned"}]}
        ).to_list(None)
        for execution in uncommitted:
            job = await self._jobs.find_one({"_id": execution["jobId"]})
            if job is None:
                await self._executions.update_one(
                    {"_id": execution["_id"]}, {"$set": {"outcomeCommitted": True}}
                )
                continue
            # A deposed leader's cursors are not trusted: the next incremental run reads those records again.
            await self.launcher.commit_outcome(execution, job, error=execution.get("error"), cursors={})
        return recovered

    async def _shutdown(self) -> None:
        await self.launcher.drain(self._settings.shutdown_grace_seconds)
        log.info("worker_stopped")
