"""Cron maths in a job's own time zone, as small pure functions.

Fire times follow the local wall clock: a local time that does not exist (the spring-forward gap) is
skipped, and a local time that happens twice (the fall-back hour) fires once, at its first occurrence.
"""

import copy
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterBadDateError, CroniterError

MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
FIELD_NAMES = ("minute", "hour", "day of month", "month", "day of week")
# Bounds the search for a fire time; a cron like "0 0 31 2 *" (never) must end, not spin.
MAX_CANDIDATES = 2000


def cron_problem(expression: str) -> str | None:
    """Why a cron expression is invalid, naming the bad field; None when it is valid."""
    text = expression.strip()
    if text.startswith("@"):
        return None if text in MACROS else f"unknown macro {text!r}; use one of {', '.join(sorted(MACROS))}"
    fields = text.split()
    if len(fields) != 5:
        return f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}"
    for position, (field, name) in enumerate(zip(fields, FIELD_NAMES, strict=True)):
        probe = ["*"] * 5
        probe[position] = field
        try:
            croniter(" ".join(probe))
        except (CroniterError, ValueError, KeyError) as exc:
            return f"invalid {name} field {field!r}: {exc}"
    try:
        croniter(text).get_next(datetime)
    except CroniterBadDateError:
        return "the expression never fires"
    except (CroniterError, ValueError, KeyError) as exc:
        return str(exc)
    return None


def timezone_problem(name: str) -> str | None:
    """Why a time-zone name is not a usable IANA zone; None when it is."""
    try:
        zone_of(name)
    except (ZoneInfoNotFoundError, ValueError):
        return f"unknown IANA time zone {name!r}"
    return None


@lru_cache(maxsize=1024)
def zone_of(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=4096)
def _parsed(cron: str) -> croniter:
    return croniter(cron, datetime(2000, 1, 1))


def iterator_from(cron: str, start: datetime) -> croniter:
    """A fresh croniter at `start`: a copy of one parsed once per expression, since parsing costs more than
    stepping (about 100 us instead of 270 us a call here), which is most of loading 10,000 distinct jobs."""
    iterator = copy.copy(_parsed(cron))
    iterator.set_current(start, force=True)
    return iterator


def _exists(local: datetime, tz: ZoneInfo) -> bool:
    aware = local.replace(tzinfo=tz)
    return aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == local


def fire_times(cron: str, after: datetime, tz_name: str) -> Iterator[datetime]:
    """Fire times strictly after `after` (aware), in UTC, in order."""
    tz = zone_of(tz_name)
    after_utc = after.astimezone(UTC)
    # Within the repeated fall-back hour the wall clock runs past slots it has already fired once;
    # those come out earlier than `after` in UTC and are passed over below.
    start_local = after_utc.astimezone(tz).replace(tzinfo=None)
    candidates = iterator_from(cron, start_local)
    last_local: datetime | None = None
    misses = 0
    while True:
        try:
            local = candidates.get_next(datetime)
        except CroniterBadDateError:
            return
        if local == last_local:
            continue
        last_local = local
        if not _exists(local, tz):
            continue
        # fold=0: of a repeated local time, only the first occurrence fires.
        moment = local.replace(tzinfo=tz, fold=0).astimezone(UTC)
        if moment <= after_utc:
            misses += 1
            if misses > MAX_CANDIDATES:
                return
            continue
        yield moment


def next_fire_time(cron: str, after: datetime, tz_name: str) -> datetime | None:
    """First fire time strictly after `after`, in UTC; None for a cron that never fires."""
    return next(fire_times(cron, after, tz_name), None)


def next_fire_times(cron: str, after: datetime, tz_name: str, count: int) -> list[datetime]:
    """The next `count` fire times strictly after `after`, in UTC."""
    result: list[datetime] = []
    for moment in fire_times(cron, after, tz_name):
        result.append(moment)
        if len(result) == count:
            break
    return result
