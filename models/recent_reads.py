"""Reads shared for a moment: a document read by its key is kept at most `max_age`, so the runs launched
within that time (many jobs of one data source, one destination, one connector) cost one read between
them; runs launched together wait for the one read in flight rather than each send their own. An edit
reaches the next read after at most `max_age`, as a revoked token does (api/token_cache.py)."""

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from datetime import datetime, timedelta
from typing import Any

from models.clock import Clock

MAX_AGE = timedelta(seconds=1)
MAX_ENTRIES = 10_000  # past it the cache starts over: memory stays bounded whatever is read


class RecentReads:
    def __init__(self, clock: Clock, *, max_age: timedelta = MAX_AGE):
        self._clock = clock
        self._max_age = max_age
        self._entries: dict[Hashable, tuple[Any, datetime]] = {}
        self._loading: dict[Hashable, asyncio.Future] = {}

    async def get(self, key: Hashable, load: Callable[[], Awaitable[Any]]) -> Any:
        """The value read for `key` within `max_age`, else `load()` (absence included: a None is kept too,
        so a missing document is not read again by every run of the same second)."""
        now = self._clock.now()
        cached = self._entries.get(key)
        # A clock stepped back must not stretch an entry's life, so the age is bounded on both sides.
        if cached is not None and timedelta(0) <= now - cached[1] < self._max_age:
            return cached[0]
        pending = self._loading.get(key)
        if pending is None:
            pending = self._loading[key] = asyncio.ensure_future(self._load(key, load, now))
            # Read here even if every caller has gone (cancelled): no "exception never retrieved".
            pending.add_done_callback(lambda done: done.cancelled() or done.exception())
        # Shielded: one caller cancelled does not cancel the read the others wait for.
        return await asyncio.shield(pending)

    async def _load(self, key: Hashable, load: Callable[[], Awaitable[Any]], now: datetime) -> Any:
        try:
            value = await load()
        finally:
            self._loading.pop(key, None)
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = (value, now)
        return value
