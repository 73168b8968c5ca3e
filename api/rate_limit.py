"""Per-token rate limits: a token bucket per token, in this API process."""

import math
from dataclasses import dataclass
from datetime import datetime

from api.errors import RateLimited

# Buckets of tokens idle long enough to be full again are dropped past this many, so memory stays bounded.
MAX_BUCKETS = 10_000


@dataclass
class Bucket:
    level: float
    at: datetime


class RateLimiter:
    """`rate` requests a second on average, `burst` at once; the clock is the app's (a FakeClock in tests)."""

    def __init__(self, *, rate: float, burst: int):
        self.rate = rate
        self.burst = burst
        self._buckets: dict[object, Bucket] = {}

    def take(self, key: object, now: datetime) -> None:
        """Spend one request of `key`'s bucket, or raise RateLimited with the seconds until one is back."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._drop_full(now)
            bucket = self._buckets[key] = Bucket(level=self.burst, at=now)
        elapsed = max(0.0, (now - bucket.at).total_seconds())
        bucket.level = min(self.burst, bucket.level + elapsed * self.rate)
        bucket.at = now
        if bucket.level < 1:
            raise RateLimited(
                details={"limit": "requests per second per token", "rate": self.rate, "burst": self.burst},
                retry_after=max(1, math.ceil((1 - bucket.level) / self.rate)),
            )
        bucket.level -= 1

    def _drop_full(self, now: datetime) -> None:
        refill = self.burst / self.rate
        for key in [k for k, b in self._buckets.items() if (now - b.at).total_seconds() >= refill]:
            del self._buckets[key]
