"""A worker's run slots, shared fairly between workspaces (issue 12's fair share).

When more runs wait than there are slots, a freed slot goes to the next workspace in turn (round-robin,
each workspace to the back of the line once served), and within a workspace to its run scheduled
earliest. One tenant's thousand queued runs do not starve another tenant's one: it waits for at most one
run of each other waiting workspace."""

import asyncio
import heapq
import itertools
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime


class FairSlots:
    def __init__(self, limit: int):
        self._free = limit
        self._waiting: dict[str, list[tuple[datetime, int, asyncio.Future]]] = {}
        self._turns: deque[str] = deque()
        self._order = itertools.count()  # ties of scheduled time: first come, first served

    @asynccontextmanager
    async def slot(self, workspace: str, scheduled_for: datetime) -> AsyncIterator[None]:
        await self._acquire(workspace, scheduled_for)
        try:
            yield
        finally:
            self._release()

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
                self._release()  # granted, then canceled before it could use the slot: pass it on
            raise

    def _release(self) -> None:
        self._free += 1
        self._grant()

    def _grant(self) -> None:
        while self._free > 0 and self._turns:
            workspace = self._turns.popleft()
            waiting = self._waiting[workspace]
            _, _, granted = heapq.heappop(waiting)
            if waiting:
                self._turns.append(workspace)
            else:
                del self._waiting[workspace]
            if granted.cancelled():
                continue  # its run was canceled while it waited
            self._free -= 1
            granted.set_result(None)
