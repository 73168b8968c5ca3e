"""Leader election: take the worker lock when it is free, keep it renewed, and run one term's work while
it lasts. Standbys sleep until the recorded lease runs out."""

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from pymongo.errors import PyMongoError

from models.clock import Clock
from models.settings import Settings
from worker import metrics
from worker.leader_lock import LeaderLock, Lease
from worker.naps import nap

log = structlog.get_logger("syncjobs.worker")
MIN_RETRY_SECONDS = 0.1


class LeadershipLost(Exception):
    pass


class Election:
    """Runs `work(term)` while this worker holds the lock; `leading` is set meanwhile."""

    def __init__(self, leader_lock: LeaderLock, *, clock: Clock, settings: Settings):
        self.leader_lock = leader_lock
        self._clock = clock
        self._settings = settings
        self.lease: Lease | None = None
        self.leading = asyncio.Event()

    def acting(self, term: int | None = None) -> bool:
        """Whether this worker may fire or launch right now (under `term`, when given)."""
        lease = self.lease
        return lease is not None and (term is None or lease.term == term) and lease.valid(self._clock.now())

    async def run(
        self,
        stop: asyncio.Event,
        work: Callable[[int], Awaitable[None]],
        ended: Callable[[], None],
        drain: Callable[[], Awaitable[None]],
    ) -> None:
        """Until `stop`: lead when the lock is free, stand by otherwise. `ended` runs when a term ends;
        `drain` runs before a graceful stop releases the lock, while the lease is still renewed."""
        while not stop.is_set():
            try:
                lease = await self.leader_lock.acquire()
            except PyMongoError as error:
                log.warning("lock_acquire_failed", error=str(error))
                lease = None
            failed = lease is not None and await self._lead(lease, stop, work, ended, drain)
            if not stop.is_set():
                # After an error, a standby gets the first chance: a bug must not become a loop.
                wait = self._settings.renew_seconds if failed else await self._until_next_try()
                await nap(self._clock, stop, wait, consume=False)

    async def _until_next_try(self) -> float:
        """A standby tries again when the recorded lease runs out, so a crashed leader is replaced within
        its lease, and at least every renewal interval, so a graceful hand-over is seen at once."""
        try:
            expires_at = await self.leader_lock.expires_at()
        except PyMongoError:
            expires_at = None
        if expires_at is None:
            return self._settings.renew_seconds
        until = (expires_at - self._clock.now()).total_seconds()
        return min(self._settings.renew_seconds, max(until, MIN_RETRY_SECONDS))

    async def _lead(self, lease: Lease, stop: asyncio.Event, work, ended, drain) -> bool:
        """Lead until the lease is lost, `stop` is set or an error ends it; True for an error."""
        self.lease = lease
        self.leading.set()
        log.info("lock_acquired", term=lease.term)
        keeper = asyncio.create_task(self._keep_lease(), name="keep-lease")
        worker = asyncio.create_task(work(lease.term), name="schedule")
        stopping = asyncio.create_task(stop.wait(), name="stop")
        lost = failed = False
        try:
            done, _ = await asyncio.wait([keeper, worker, stopping], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    error = task.exception()
                    if isinstance(error, LeadershipLost):
                        lost = True
                        log.warning("lock_lost", term=lease.term, reason=str(error))
                    else:
                        failed = True
                        log.error("leadership_ended_by_error", error=repr(error), exc_info=error)
        finally:
            # The term's timers and watchers stop at once; a graceful stop then lets running syncs finish
            # under a lease that is still renewed, so their outcomes are committed by this very term.
            for task in (worker, stopping):
                task.cancel()
            await asyncio.gather(worker, stopping, return_exceptions=True)
            if stop.is_set() and not lost and not keeper.done():
                await drain()
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
            self.lease = None
            self.leading.clear()
            ended()
        if not lost:
            # Stopping, or an error ended this leadership: hand over now rather than after the lease.
            await self.leader_lock.release(lease)
            log.info("lock_released", term=lease.term)
        return failed

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
