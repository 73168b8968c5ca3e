"""Dispatch: queued runs whose time has come (manual runs, retries, slots of an earlier term) go to the
launcher, and cancel requests reach the runs of this worker. Woken by events (the feed reporting a queued
run or a cancel request, a retry's time coming), with the poll interval as the floor. Runs waiting for a
job's lock or a run slot are the launcher's: the dispatcher does not read them again after each run."""

import asyncio
from datetime import datetime

from models.clock import Clock
from models.execution import Trigger
from models.execution_store import ExecutionStore
from models.settings import Settings
from worker.launcher import Launcher
from worker.naps import nap
from worker.recovery import Recovery

DISPATCH_BATCH = 500


class Dispatcher:
    def __init__(
        self,
        *,
        store: ExecutionStore,
        launcher: Launcher,
        recovery: Recovery,
        clock: Clock,
        settings: Settings,
        acting,
    ):
        self._store = store
        self._launcher = launcher
        self._recovery = recovery
        self._clock = clock
        self._settings = settings
        self._acting = acting
        self.wake = asyncio.Event()
        self._due_at: datetime | None = None
        # While the term's catch-up decides the fate of slots an earlier leader fired and never started
        # (the newest within grace runs, the others end skipped), those slots are its, not the dispatcher's.
        self._catching_up = False

    def catching_up(self, value: bool) -> None:
        self._catching_up = value
        if not value:
            self.wake.set()

    def _decided_by_catch_up(self, execution: dict, term: int) -> bool:
        return (
            self._catching_up
            and execution["trigger"] == Trigger.SCHEDULE.value
            and execution.get("firedTerm") != term
        )

    def wake_at(self, moment: datetime) -> None:
        """A run queued by this worker (a retry) comes due then: dispatch at that moment, not a poll later."""
        if self._due_at is None or moment < self._due_at:
            self._due_at = moment
            self.wake.set()

    async def loop(self, term: int) -> None:
        last_recovery = self._clock.now()
        while True:
            await self.dispatch(term)
            # Recovery runs on its own timer, so that it happens with change streams too, which never resync.
            if (self._clock.now() - last_recovery).total_seconds() >= self._settings.resync_interval_seconds:
                last_recovery = self._clock.now()
                await self._recovery.recover_abandoned(term)
            await nap(self._clock, self.wake, self._until_next())

    def _until_next(self) -> float:
        wait = self._settings.poll_interval_seconds
        now = self._clock.now()
        if self._due_at is not None:
            if self._due_at <= now:
                self._due_at = None
            else:
                wait = min(wait, (self._due_at - now).total_seconds())
        return wait

    async def dispatch(self, term: int) -> None:
        """Start queued runs that are due and not already in hand, and pass cancel requests on."""
        if not self._acting(term):
            return
        in_flight = self._launcher.in_flight
        # Runs this worker holds already are left out by the query itself while there are few of them.
        skip = list(in_flight) if len(in_flight) <= DISPATCH_BATCH else []
        for execution in await self._store.due_queued(self._clock.now(), DISPATCH_BATCH, skip=skip):
            if self._decided_by_catch_up(execution, term):
                continue
            if execution["_id"] not in in_flight and self._acting(term):
                self._launcher.submit(execution, term)
        running_here = list(self._launcher.running)
        if running_here:
            for execution_id, reason in (await self._store.cancel_requests(running_here)).items():
                self._launcher.cancel(execution_id, reason)
