"""Chunk sizes for the leader's bulk writes, learned from what each write cost the event loop.

A database in this process (the in-memory one) does a whole `insert_many` on the event loop, and its cost
grows with the collection (mongomock scans it once per unique index for every document: about 25 ms a
document at a few thousand executions), so a chunk of 500 held the loop for seconds, starving the lease
renewal and the next slot's firing. A server costs the loop almost nothing while it answers. Sizing each
chunk from the CPU time the writes took suits both: single documents on the in-memory database, chunks of
hundreds on a server.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager

# About how long one write may hold the event loop: the fire loop, the lease renewal and a stop signal get
# their turn between two writes well within the 100 ms the worker allows any step.
WRITE_BUDGET_SECONDS = 0.03


class Pace:
    """The chunk size for the next write, shared by the writes of one worker (firing and catch-up), so that
    what one learns about the database the other uses. A write over the budget shrinks the size in
    proportion at once; one under half of it doubles the size, up to `largest`."""

    def __init__(self, *, largest: int, budget: float = WRITE_BUDGET_SECONDS):
        self.largest = largest
        self.budget = budget
        self.size = largest

    def chunks(self, items: list) -> Iterator[list]:
        """`items` in chunks of the size at the moment each is taken."""
        start = 0
        while start < len(items):
            chunk = items[start : start + self.size]
            start += len(chunk)
            yield chunk

    @contextmanager
    def timed(self, count: int) -> Iterator[None]:
        """Around the write of `count` items: what it took sizes the next. CPU time of this thread, not wall
        time: waiting for a server's answer holds up nothing, work done on the loop does."""
        began = time.thread_time()
        yield
        took = time.thread_time() - began
        if took > self.budget:
            self.size = max(1, min(self.size, int(count * self.budget / took)))
        elif took < self.budget / 2:
            self.size = min(self.largest, self.size * 2)
