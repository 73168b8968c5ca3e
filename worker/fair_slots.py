"""A worker's run slots, shared fairly between workspaces (issue 12's fair share).

When more runs wait than there are slots, a freed slot goes to the next workspace in turn (round-robin,
each workspace to the back of the line once served), and within a workspace to its run scheduled
earliest. One tenant's thousand queued runs do not starve another tenant's one: it waits for at most one
run of each other waiting workspace. With `per_workspace`, no workspace holds more slots than that at once
(MAX_RUNS_PER_WORKSPACE): its further runs wait even while slots are free, so one tenant cannot fill the
worker. Only the leader runs syncs today, so this bound is the fleet's."""

import asyncio
import heapq
import itertools
from collections import Counter, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime


class FairSlots:
    def __init__(self, limit: int, *, per_workspace: int | None = None):
        self._free = limit
        self._per_workspace = per_workspace
        self._held: Counter[str] = Counter()
        self._waiting: dict[str, list[tuple[datetime, int, asyncio.Future]]] = {}
        self._turns: deque[str] = deque()
        self._order = itertools.count()  # ties of scheduled time: first come, first served

    @asynccontextmanager
    async def slot(self, workspace: str, scheduled_for: datetime) -> AsyncIterator[None]:
        await self._acquire(workspace, scheduled_for)
        try:
            yield
        finally:
            self._release(workspace)

    async def _acquire(self, workspace: str, scheduled_for: datetime) -> None:
        granted = asyncio.get_running_loop().create_future()
        if workspace not in self._waiting:
            self._waiting[workspace] = []
            self._turns.append(workspace)
        heapq.heappush(self._waiting[workspace], (scheduled_for, next(self._order), granted))
        self._grant()
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self._release(workspace)  # granted, then canceled before it could use the slot: pass it on
            raise

    def _release(self, workspace: str) -> None:
        self._free += 1
        self._held[workspace] -= 1
        if self._held[workspace] <= 0:
            del self._held[workspace]
        self._grant()

    def _at_cap(self, workspace: str) -> bool:
        return self._per_workspace is not None and self._held[workspace] >= self._per_workspace

    def _grant(self) -> None:
        while self._free > 0:
            # One pass over the line: a workspace at its cap keeps its place and is passed over.
            for _ in range(len(self._turns)):
                workspace = self._turns.popleft()
                if self._at_cap(workspace):
                    self._turns.append(workspace)
                    continue
                waiting = self._waiting[workspace]
                _, _, granted = heapq.heappop(waiting)
                if waiting:
                    self._turns.append(workspace)
                else:
                    del self._waiting[workspace]
                if not granted.cancelled():  # a run canceled while it waited takes nothing
                    self._free -= 1
                    self._held[workspace] += 1
                    granted.set_result(None)
                break
            else:
                return  # nobody waits, or every waiting workspace is at its cap
