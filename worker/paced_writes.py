"""Chunks for a series of writes, sized by what each write cost the event loop.

A database in this process (the in-memory one) does a whole `insert_many` on the event loop, and its cost
grows with the collection (mongomock scans it once per unique index for every document: about 25 ms a
document at a few thousand executions), so a chunk of 500 held the loop for seconds. A server costs the loop
almost nothing while it answers. Sizing each chunk from the CPU time the last one took suits both: single
documents on the in-memory database, chunks of hundreds on a server.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager

# About how long one write may hold the event loop: the fire loop, the lease renewal and a stop signal get
# their turn between two writes well within the 100 ms the worker allows any step.
WRITE_BUDGET_SECONDS = 0.02


class PacedChunks:
    """Hands out chunks of `items`, one write each: the first chunk is one item; a write that took under
    half the budget doubles the next chunk (up to `largest`), one over it halves it."""

    def __init__(self, items: list, *, largest: int, budget: float = WRITE_BUDGET_SECONDS):
        self._items = items
        self._largest = largest
        self._budget = budget
        self.size = 1

    def __iter__(self) -> Iterator[list]:
        start = 0
        while start < len(self._items):
            chunk = self._items[start : start + self.size]
            start += len(chunk)
            yield chunk

    @contextmanager
    def timed(self) -> Iterator[None]:
        """Around one chunk's write: what it took sizes the next. CPU time of this thread, not wall time:
        waiting on a server's answer holds up nothing, work done on the loop does."""
        began = time.thread_time()
        yield
        took = time.thread_time() - began
        if took < self._budget / 2:
            self.size = min(self._largest, self.size * 2)
        elif took > self._budget:
            self.size = max(1, self.size // 2)
