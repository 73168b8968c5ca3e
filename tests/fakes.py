"""Test doubles for the seams the code hands in: the clock."""

import asyncio
import heapq
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


class FakeClock:
    """Time moves only when a test says so; sleepers wake when it passes their deadline."""

    def __init__(self, start: datetime | None = None):
        # In the future on purpose: mongomock deletes TTL-expired documents against the real clock, so a
        # fake "now" in the past would make fresh executions vanish on the next read.
        self._now = start or datetime(2030, 1, 7, 12, 0, tzinfo=UTC)
        self._sleepers: list[tuple[datetime, int, asyncio.Future]] = []
        self._order = itertools.count()

    def now(self) -> datetime:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + timedelta(seconds=seconds), next(self._order), future))
        await future

    async def advance(self, seconds: float, *, step: float = 1.0) -> None:
        """Move time forward in steps, letting woken tasks run at each step as they would in real time."""
        end = self._now + timedelta(seconds=seconds)
        while self._now < end:
            self._now = min(end, self._now + timedelta(seconds=step))
            self._wake()
            await settle()

    def next_deadline(self) -> datetime | None:
        """When the earliest sleeper that is still waiting wakes; None when nobody sleeps."""
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
        return self._sleepers[0][0] if self._sleepers else None

    def set(self, moment: datetime) -> None:
        self._now = moment
        self._wake()

    def _wake(self) -> None:
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)


# Whether a database still owes an answer: the wire backend registers its count of operations in flight.
DATABASE_BUSY: list[Callable[[], bool]] = []


async def settle(rounds: int = 50, *, timeout: float = 2.0) -> None:
    """Let every ready task run until the loop goes quiet: `rounds` passes in a row with no database operation
    in flight (the in-memory database never yields; a wire server answers in its own time)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    quiet = 0
    while quiet < rounds and loop.time() < deadline:
        if any(busy() for busy in DATABASE_BUSY):
            quiet = 0
            await asyncio.sleep(0.0005)
        else:
            quiet += 1
            await asyncio.sleep(0)


async def eventually(predicate, *, timeout: float = 5.0, message: str = "condition"):
    """Await a condition that other tasks make true; fails after `timeout` real seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        await asyncio.sleep(0.005)
