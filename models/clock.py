"""Time as a dependency: production reads the system clock, tests hand in a clock they move."""

import asyncio
from datetime import UTC, datetime
from typing import Protocol


def to_bson_precision(moment: datetime) -> datetime:
    """BSON dates keep milliseconds; cutting here makes a stored date equal the one in memory."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class Clock(Protocol):
    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Aware UTC time at BSON precision, and asyncio's sleep."""

    def now(self) -> datetime:
        return to_bson_precision(datetime.now(UTC))

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))
