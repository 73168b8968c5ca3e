"""Dispatch, on every worker: claim queued runs whose time has come (scheduled slots, manual runs,
retries) up to this worker's free capacity, workspaces taking turns, and pass cancel requests on to the
runs going here. One read per pass gives both. Woken by events (a slot fired or a run queued, a retry's
time coming, a job lock let go), with the poll interval as the floor: that is how other workers' work
reaches this one. A run ending here under a backlog takes the next of the runs the last read left waiting,
without reading the queue again."""

import asyncio
from collections import deque
from datetime import datetime, timedelta

from models.clock import Clock
from models.execution import Trigger
from models.execution_store import ExecutionStore
from models.job_locks import JobLocks
from models.recent_reads import MAX_AGE as SHARED_READ_MAX_AGE
from models.settings import Settings
from worker.launcher import Launcher
from worker.naps import nap

DISPATCH_BATCH = 500
# Queued runs read per pass, beyond the free capacity, so that workspaces can take turns among them.
TURN_WINDOW = 20


def take_turns(
    queued: list[dict], free: int, running: dict[str, int], per_workspace: int | None, busy_jobs: set
) -> list[dict]:
    """Up to `free` of `queued` (oldest first): workspaces take turns, each giving its earliest run, and
    none goes past `per_workspace` counting what it has `running` across the fleet. A manual run or a
    retry is taken one per job, and not for a job in `busy_jobs` (a run of it is in hand here): it would
    only wait for the job's lock. A slot is taken anyway: its job's overlap policy decides at once."""
    by_workspace: dict[str, deque[dict]] = {}
    jobs = set(busy_jobs)
    for execution in sorted(queued, key=lambda doc: (doc["runAfter"], doc["_id"])):
        if execution["trigger"] != Trigger.SCHEDULE.value:
            if execution["jobId"] in jobs:
                continue
            jobs.add(execution["jobId"])
        by_workspace.setdefault(execution["workspaceId"], deque()).append(execution)
    going = dict(running)
    turns = deque(by_workspace)
    picked: list[dict] = []
    while turns and len(picked) < free:
        workspace = turns.popleft()
        if per_workspace is not None and going.get(workspace, 0) >= per_workspace:
            continue  # at its cap: its runs stay queued until one of its runs ends
        picked.append(by_workspace[workspace].popleft())
        going[workspace] = going.get(workspace, 0) + 1
        if by_workspace[workspace]:
            turns.append(workspace)
    return picked


class Dispatcher:
    def __init__(
        self,
        *,
        store: ExecutionStore,
        locks: JobLocks,
        launcher: Launcher,
        clock: Clock,
        settings: Settings,
    ):
        self._store = store
        self._locks = locks
        self._launcher = launcher
        self._clock = clock
        self._settings = settings
        self._labels = settings.labels
        self.wake = asyncio.Event()
        self._due_at: datetime | None = None
        # Whether the last look left due runs queued for want of capacity: then a run ending here is worth
        # a look at once; otherwise it is not, and the queue is not read again after every run.
        self._backlog = False
        # Jobs whose manual run or retry found the job's lock held by another execution: their queued runs
        # are passed over until this worker lets such a lock go or the next poll, so a blocked run is not
        # tried again at every pass.
        self._blocked: set = set()
        # The due runs the last read left for want of capacity, in the turn order it gave them, and when it
        # was read. A run ending here takes the next of them while that read is younger than the poll
        # interval, instead of reading the queue again after every run: one read per pass, not per run.
        # Any other wake-up (new work, a retry due, the poll) reads the queue afresh, so new work still
        # takes its turn at once wherever an event announces it, and within a poll otherwise.
        self._ready: deque[dict] = deque()
        self._ready_read_at: datetime | None = None
        self._read_again = True

    def blocked(self, job_id) -> None:
        self._blocked.add(job_id)
        self._backlog = True

    def look(self) -> None:
        """Something was queued or changed: read the queue at once."""
        self._read_again = True
        self.wake.set()

    def stale(self) -> None:
        """A claim found its run taken or ended elsewhere: the next pass reads the queue again. No wake-up
        of its own (the freed slot wakes the dispatcher if runs wait), so a run that can never be claimed
        is not tried over and over."""
        self._read_again = True

    def slot_freed(self) -> None:
        if self._backlog:
            self.wake.set()

    def wake_at(self, moment: datetime) -> None:
        """A run queued by this worker (a retry) comes due then: dispatch at that moment, not a poll later."""
        if self._due_at is None or moment < self._due_at:
            self._due_at = moment
            self.look()

    async def loop(self, stop: asyncio.Event) -> None:
        """Until `stop` (the worker's drain begins): dispatch, then sleep until woken or the poll is due."""
        while not stop.is_set():
            await self.dispatch()
            if not await nap(self._clock, self.wake, self._until_next()):
                self._blocked.clear()  # the poll: a lock let go on another worker is found by trying again
                self._read_again = True

    def _until_next(self) -> float:
        wait = self._settings.poll_interval_seconds
        now = self._clock.now()
        if self._due_at is not None:
            if self._due_at <= now:
                self._due_at = None
            else:
                wait = min(wait, (self._due_at - now).total_seconds())
        return wait

    async def dispatch(self) -> None:
        """Claim what is due, up to the free capacity; pass cancel requests on; wake runs whose job lock
        another worker has let go."""
        if not self._read_again and await self._take_ready():
            return
        launcher = self._launcher
        running_here = list(launcher.running)
        free = launcher.free
        if free == 0 and not running_here:
            self._backlog = True  # full: a run ending here looks again
            return
        in_flight = launcher.in_flight
        # Runs this worker holds already are left out by the query itself while there are few of them.
        in_hand = list(in_flight) if len(in_flight) <= DISPATCH_BATCH else []
        queued, cancels = await self._store.next_up(
            self._clock.now(),
            min(max(free * 4, TURN_WINDOW), DISPATCH_BATCH) if free else 0,
            labels=self._labels,
            in_hand=in_hand,
            running_here=running_here,
        )
        for execution_id, reason in cancels.items():
            launcher.cancel(execution_id, reason)
        self._blocked -= launcher.released_jobs
        launcher.released_jobs.clear()
        waiting = [execution for execution in queued if execution["_id"] not in in_flight]
        queued = [execution for execution in waiting if not self._waits_for_its_lock(execution)]
        picked: list[dict] = []
        ready: list[dict] = []
        if queued and free:
            cap = self._settings.max_runs_per_workspace
            running = (
                await self._store.running_by_workspace(sorted({doc["workspaceId"] for doc in queued}))
                if cap is not None
                else {}
            )
            if cap is None:
                # The whole read in turn order: what does not fit now is taken as runs end here.
                order = take_turns(queued, len(queued), {}, None, launcher.jobs_in_hand())
                picked, ready = order[: launcher.free], order[launcher.free :]
            else:
                # Under a fleet-wide cap, what may go depends on the counts of the moment: read again.
                picked = take_turns(queued, launcher.free, running, cap, launcher.jobs_in_hand())
            if picked:
                # The jobs of what waits come with the same read: a run taking its turn within a second
                # starts from them, as runs share their data source's read (models.recent_reads).
                await launcher.read_jobs(picked + ready)
            for execution in picked:
                launcher.submit(execution)
        if free:
            # A read made while full saw what waits but could not order it against capacity: the next run
            # ending reads again rather than take an older list.
            self._ready, self._ready_read_at, self._read_again = deque(ready), self._clock.now(), False
        # Full, we cannot tell what waits: a run ending here looks again.
        self._backlog = len(waiting) > len(picked) if free else True
        await self._wake_freed_locks()

    async def _take_ready(self) -> bool:
        """A run ended here: claim the next of the runs the last read left waiting. False when none is left
        (or the read is older than the poll interval): then the queue is read again."""
        launcher = self._launcher
        if not self._ready or self._ready_read_at is None:
            return False
        if not launcher.free:
            return True  # full again already: the next run ending here comes back
        age = (self._clock.now() - self._ready_read_at).total_seconds()
        if not 0 <= age < self._settings.poll_interval_seconds:
            return False
        in_flight, busy = launcher.in_flight, launcher.jobs_in_hand() | self._blocked
        picked: list[dict] = []
        while self._ready and len(picked) < launcher.free:
            execution = self._ready.popleft()
            if execution["_id"] in in_flight:
                continue
            if execution["trigger"] != Trigger.SCHEDULE.value:
                if execution["jobId"] in busy:
                    continue  # it waits for its job's lock: a later read finds it again
                busy.add(execution["jobId"])
            picked.append(execution)
        if not picked:
            return False
        if not timedelta(0) <= self._clock.now() - self._ready_read_at < SHARED_READ_MAX_AGE:
            await launcher.read_jobs(picked)  # their jobs as read with them are too old to start from
        for execution in picked:
            launcher.submit(execution)
        return True

    def _waits_for_its_lock(self, execution: dict) -> bool:
        """A manual run or a retry of a job found locked waits in the queue. A slot is taken anyway: the
        job's overlap policy decides there and then (skip, cancel the running one, or wait)."""
        return execution["jobId"] in self._blocked and execution["trigger"] != Trigger.SCHEDULE.value

    async def _wake_freed_locks(self) -> None:
        waits = self._launcher.lock_waits()
        if not waits:
            return
        now = self._clock.now()
        held = await self._locks.of_jobs(sorted(waits))
        for job_id in waits:
            lock = held.get(job_id)
            if lock is None or lock["expiresAt"] <= now:
                self._launcher.lock_freed(job_id)
