"""Cron maths in a job's own time zone, as small pure functions.

Fire times follow the local wall clock: a local time that does not exist (the spring-forward gap) is
skipped, and a local time that happens twice (the fall-back hour) fires once, at its first occurrence.
"""

import copy
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

from croniter import croniter
from croniter.croniter import CroniterBadDateError, CroniterError

# croniter's Jenkins-style "H", "H(0-29)", "H/15" and its random "R": they need a hash id we do not pass.
HASHED = re.compile(r"^[HR](\(|/|$)", re.IGNORECASE)
MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
FIELD_NAMES = ("minute", "hour", "day of month", "month", "day of week")
# Bounds the search for a fire time; a cron like "0 0 31 2 *" (never) must end, not spin. Candidates that
# are passed over (already past, or inside a spring-forward gap) count: a cron confined to a one-hour gap
# yields at most 60 a year, 600 in the horizon below.
MAX_CANDIDATES = 2000
# A schedule must fire within this; past it a search stops, so no next-time computation runs on for years
# of candidates (croniter would search up to the year 9999 for `30 1 * 3 L0` in Europe/London).
HORIZON = timedelta(days=3653)
# Files in the zone database that are not time zones a person would name.
NOT_ZONES = frozenset({"Factory", "localtime", "posixrules"})


@lru_cache(maxsize=4096)
def cron_problem(expression: str) -> str | None:
    """Why a cron expression is invalid, naming the bad field; None when it is valid. Cached: checking costs
    six croniter parses, and the same few expressions come back on every write."""
    text = expression.strip()
    if text.startswith("@"):
        return None if text in MACROS else f"unknown macro {text!r}; use one of {', '.join(sorted(MACROS))}"
    fields = text.split()
    if any(HASHED.match(part) for field in fields for part in field.split(",")):
        return (
            "hashed (H) and random (R) expressions are not supported; write the times out, e.g. '17 * * * *'"
        )
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
    """Why a time-zone name is not an IANA zone name; None when it is. Link names (`US/Eastern`, `EST`) are
    IANA names too and are accepted; directories (`America`), `Factory`, `posixrules` and the `posix/` and
    `right/` copies are not zones."""
    if name not in zone_names():
        return f"unknown IANA time zone {name!r}"
    return None


@lru_cache(maxsize=1)
def zone_names() -> frozenset[str]:
    # available_timezones() walks the zone database on disk (tens of ms): once per process.
    return frozenset(
        name
        for name in available_timezones()
        if name not in NOT_ZONES and not name.startswith(("posix/", "right/"))
    )


def schedule_problem(cron: str, tz_name: str, now: datetime) -> str | None:
    """Why a valid cron in a valid zone is still unusable: it must fire within HORIZON of `now` in that
    zone's wall clock (`30 1 * 3 L0` never does in Europe/London: 01:30 on that day does not exist)."""
    if next_fire_time(cron, now, tz_name) is None:
        return f"the expression does not fire in {tz_name} within the next 10 years"
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
    """Fire times strictly after `after` (aware), in UTC, in order, up to HORIZON after `after`; ends early
    after MAX_CANDIDATES passed-over candidates in a row, so every call is bounded."""
    tz = zone_of(tz_name)
    after_utc = after.astimezone(UTC)
    horizon_local = (after_utc + HORIZON).astimezone(tz).replace(tzinfo=None)
    # Within the repeated fall-back hour the wall clock runs past slots it has already fired once;
    # those come out earlier than `after` in UTC and are passed over below.
    start_local = after_utc.astimezone(tz).replace(tzinfo=None)
    candidates = iterator_from(cron, start_local)
    last_local: datetime | None = None
    misses = 0
    while True:
        try:
            local = candidates.get_next(datetime)
        except (CroniterBadDateError, ValueError, OverflowError):
            return  # never again, or not before the year 9999
        if local > horizon_local:
            return
        if local == last_local:
            continue
        last_local = local
        # fold=0: of a repeated local time, only the first occurrence fires.
        moment = local.replace(tzinfo=tz, fold=0).astimezone(UTC)
        if not _exists(local, tz) or moment <= after_utc:
            misses += 1
            if misses > MAX_CANDIDATES:
                return
            continue
        misses = 0
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


# (cron, zone, count) -> (computed at, the fire times after that moment). Bounded: cleared when full.
_UPCOMING: dict[tuple[str, str, int], tuple[datetime, list[datetime]]] = {}
UPCOMING_CACHE_SIZE = 4096


def upcoming_fire_times(cron: str, after: datetime, tz_name: str, count: int) -> list[datetime]:
    """next_fire_times, reused until its first time passes: for any `after` between the moment it was
    computed and that first fire time, the answer is the same list. Jobs share few (cron, zone) pairs, so
    a status request rarely steps croniter at all."""
    key = (cron, tz_name, count)
    cached = _UPCOMING.get(key)
    if cached is not None:
        computed_at, times = cached
        if computed_at <= after and (not times or after < times[0]):
            return list(times)
    times = next_fire_times(cron, after, tz_name, count)
    if len(_UPCOMING) >= UPCOMING_CACHE_SIZE:
        _UPCOMING.clear()
    _UPCOMING[key] = (after, times)
    return list(times)
