"""The scheduler: one worker replica. Every replica claims queued runs up to its capacity and runs them;
the one that wins the election also keeps the timetable, turns due slots into queued runs and recovers
what dead workers left behind.

The pieces, each in a module of its own: worker.election (the lock and the term), worker.firing (the
timetable of the term and its firing), worker.dispatch (claiming queued runs, cancel requests),
worker.recovery (missed slots, abandoned runs, uncommitted outcomes) and worker.launcher (one run).
"""

import asyncio
import random
from datetime import datetime

import structlog

from executor.outcome import Runner
from models.clock import Clock
from models.execution_store import ExecutionStore
from models.job_locks import JobLocks
from models.settings import Settings
from worker.change_feed import Change, open_feed, watch_queue
from worker.dispatch import Dispatcher
from worker.election import Election, LeadershipLost
from worker.firing import Firing
from worker.identity import new_worker_id
from worker.job_status import JobStatusWriter
from worker.launcher import Launcher
from worker.leader_lock import CurrentTerm, LeaderLock, Lease
from worker.recovery import Recovery
from worker.timetable import Timetable

__all__ = ["LeadershipLost", "Scheduler"]

log = structlog.get_logger("syncjobs.worker")


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
        self._clock = clock
        self._settings = settings
        self._feed_factory = feed_factory
        self._said_polling = False
        self.store = ExecutionStore(db, retention_days=settings.execution_retention_days)
        self.leader_lock = LeaderLock(
            db,
            worker_id=self.worker_id,
            clock=clock,
            lease_seconds=settings.worker_lease_seconds,
            skew_seconds=settings.worker_clock_skew_seconds,
        )
        self.election = Election(self.leader_lock, clock=clock, settings=settings)
        self.leading = self.election.leading  # for tests and health: set while this worker leads
        self._status = JobStatusWriter(db)
        self.locks = JobLocks(db, worker_id=self.worker_id, ttl_seconds=settings.job_lock_ttl_seconds)
        self._term_cache = CurrentTerm(self.leader_lock, self.election, clock=clock)
        self.launcher = Launcher(
            db,
            store=self.store,
            locks=self.locks,
            runner=runner,
            clock=clock,
            settings=settings,
            worker_id=self.worker_id,
            rng=rng,
            max_concurrent=max_concurrent,
            current_term=self._term_cache.get,
            on_retry=lambda run_after: self.dispatcher.wake_at(run_after),
            on_free=lambda: self.dispatcher.slot_freed(),
            on_blocked=lambda job_id: self.dispatcher.blocked(job_id),
            on_lost=lambda: self.dispatcher.stale(),
        )
        self.dispatcher = Dispatcher(
            store=self.store, locks=self.locks, launcher=self.launcher, clock=clock, settings=settings
        )
        self.firing = Firing(
            db,
            clock=clock,
            store=self.store,
            status=self._status,
            queued=self.dispatcher.look,
            acting=self.acting,
            lost=LeadershipLost,
        )
        self.recovery = Recovery(
            db,
            clock=clock,
            store=self.store,
            locks=self.locks,
            launcher=self.launcher,
            leader_lock=self.leader_lock,
            queued=self.dispatcher.look,
            firing=self.firing,
        )
        # How edits reach the schedule while leading: change_streams | polling (None while standing by).
        self.reload_mode: str | None = None

    # -- the public face -----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set: claim and run queued work; lead when the lock is free, stand by otherwise.
        Then shut down cleanly: claim nothing more, let what runs here finish within the grace."""
        with structlog.contextvars.bound_contextvars(worker_id=self.worker_id):
            log.info("worker_started", capacity=self.launcher.capacity, labels=self._settings.labels)
            claiming = [
                asyncio.create_task(self.dispatcher.loop(stop), name="dispatch"),
                asyncio.create_task(self._watch_queue(), name="watch-queue"),
            ]
            try:
                await self.election.run(stop, self._term, self._term_ended, self._drain)
                await self._drain()
            finally:
                for task in claiming:
                    task.cancel()
                await asyncio.gather(*claiming, return_exceptions=True)
            log.info("worker_stopped")

    @property
    def lease(self) -> Lease | None:
        return self.election.lease

    @lease.setter
    def lease(self, lease: Lease | None) -> None:
        self.election.lease = lease

    @property
    def timetable(self) -> Timetable:
        return self.firing.timetable

    def acting(self, term: int | None = None) -> bool:
        """Whether this worker may fire or launch right now (under `term`, when given)."""
        return self.election.acting(term)

    async def fire_due(self, term: int) -> int:
        return await self.firing.fire_due(term)

    async def load_all(self, term: int) -> datetime | None:
        since, _, _ = await self.firing.load_all(term)
        return since

    async def apply_change(self, change: Change, term: int) -> None:
        await self.firing.apply_change(change, term)
        self.dispatcher.look()

    async def resync(self, term: int) -> None:
        await self.firing.resync(term)

    async def recover_abandoned(self, term: int) -> int:
        return await self.recovery.recover_abandoned(term)

    async def _watch_queue(self) -> None:
        try:
            await watch_queue(self._db, self.dispatcher.look, mode=self._settings.reload_mode)
        except Exception as error:  # an outage at the probe: the dispatcher's poll still finds the work
            log.warning("queue_watch_failed", error=repr(error))

    # -- one term ------------------------------------------------------------------------------------

    async def _term(self, term: int) -> None:
        feed = await self._feed_factory(
            self._db,
            clock=self._clock,
            poll_seconds=self._settings.poll_interval_seconds,
            resync_seconds=self._settings.resync_interval_seconds,
            since=None,
            mode=self._settings.reload_mode,
        )
        self.reload_mode = feed.mode  # read by the heartbeat (worker/heartbeat.py)
        if feed.mode == "polling" and not self._said_polling:
            self._said_polling = True  # once per process: every new term would otherwise say it again
            log.info(
                "change_streams_unsupported_polling",
                reason=feed.reason,
                poll_seconds=self._settings.poll_interval_seconds,
            )
        since, loaded_at, missed = await self.firing.load_all(term)
        feed.seen(since)
        await self.recovery.recover_abandoned(term)
        tasks = [
            asyncio.create_task(self.firing.fire_loop(term), name="fire"),
            asyncio.create_task(self._recover_loop(term), name="recover"),
            asyncio.create_task(self.firing.follow(feed, term, on_change=self.dispatcher.look), name="feed"),
        ]
        if missed:
            # Beside the fire loop, not before it: the first new slot fires on time however long the outage.
            tasks.append(asyncio.create_task(self._catch_up(missed, term, loaded_at), name="catch-up"))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _catch_up(self, missed, term: int, loaded_at: datetime) -> None:
        await self.recovery.catch_up(missed, term, loaded_at)

    async def _recover_loop(self, term: int) -> None:
        # On a timer of its own, so that it happens with change streams too, which never resync.
        while True:
            await self._clock.sleep(self._settings.resync_interval_seconds)
            await self.recovery.recover_abandoned(term)

    def _term_ended(self) -> None:
        self.firing.reset()

    async def _drain(self) -> None:
        await self.launcher.drain(self._settings.shutdown_grace_seconds)
