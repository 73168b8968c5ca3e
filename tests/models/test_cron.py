from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.cron import cron_problem, next_fire_time, next_fire_times, schedule_problem, timezone_problem


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cron", "after", "tz", "expected"),
    [
        ("0 * * * *", utc(2030, 1, 1, 10, 0), "UTC", [utc(2030, 1, 1, 11), utc(2030, 1, 1, 12)]),
        ("0 0 31 * *", utc(2030, 1, 31, 1), "UTC", [utc(2030, 3, 31), utc(2030, 5, 31)]),
        ("0 0 L * *", utc(2030, 2, 1), "UTC", [utc(2030, 2, 28), utc(2030, 3, 31)]),
        ("@daily", utc(2030, 1, 1, 12), "Asia/Kolkata", [utc(2030, 1, 1, 18, 30), utc(2030, 1, 2, 18, 30)]),
        # New York springs forward on 2030-03-10: 02:30 does not exist that day and is skipped.
        (
            "30 2 * * *",
            utc(2030, 3, 9, 12),
            "America/New_York",
            [utc(2030, 3, 11, 6, 30), utc(2030, 3, 12, 6, 30)],
        ),
        # ... and falls back on 2030-11-03: 01:30 happens twice and fires once, at the first (EDT).
        (
            "30 1 * * *",
            utc(2030, 11, 2, 12),
            "America/New_York",
            [utc(2030, 11, 3, 5, 30), utc(2030, 11, 4, 6, 30)],
        ),
        # Every 30 minutes across the fall-back: the repeated wall times 01:00 and 01:30 fire once.
        (
            "*/30 * * * *",
            utc(2030, 11, 3, 4, 40),
            "America/New_York",
            [utc(2030, 11, 3, 5, 0), utc(2030, 11, 3, 5, 30), utc(2030, 11, 3, 7, 0)],
        ),
        # Berlin springs forward on 2030-03-31 at 02:00: hourly jobs lose the 02:00 slot.
        ("0 * * * *", utc(2030, 3, 30, 23, 30), "Europe/Berlin", [utc(2030, 3, 31, 0), utc(2030, 3, 31, 1)]),
        # Berlin falls back on 2030-10-27: 02:00 local happens twice, fires once.
        ("0 2 * * *", utc(2030, 10, 26, 12), "Europe/Berlin", [utc(2030, 10, 27, 0), utc(2030, 10, 28, 1)]),
    ],
)
def test_fire_times_follow_the_wall_clock_of_the_job(cron, after, tz, expected):
    assert next_fire_times(cron, after, tz, len(expected)) == expected


def test_inside_the_repeated_hour_a_slot_already_fired_is_not_fired_again():
    # 06:10 UTC is 01:10 EST, the second pass through 01:xx; 01:30 fired at 05:30 UTC already.
    assert next_fire_time("30 1 * * *", utc(2030, 11, 3, 6, 10), "America/New_York") == utc(
        2030, 11, 4, 6, 30
    )


def test_a_cron_that_never_fires_returns_none():
    assert next_fire_time("0 0 30 2 *", utc(2030, 1, 1), "UTC") is None
    assert cron_problem("0 0 30 2 *") == "the expression never fires"


@pytest.mark.parametrize(
    ("cron", "named"),
    [
        ("61 * * * *", "minute"),
        ("* 24 * * *", "hour"),
        ("* * 32 * *", "day of month"),
        ("* * * 0 *", "month"),
        ("* * * * 8", "day of week"),
        ("* * * *", "5 fields"),
        ("@sometimes", "macro"),
    ],
)
def test_cron_problems_name_the_bad_field(cron, named):
    assert named in cron_problem(cron)


def test_valid_crons_and_zones_have_no_problem():
    assert cron_problem("*/5 9-17 * * 1-5") is None and cron_problem("@hourly") is None
    assert timezone_problem("Europe/Paris") is None and "Nowhere/City" in timezone_problem("Nowhere/City")


@settings(max_examples=60, deadline=None)
@given(
    minute=st.integers(0, 59),
    hour=st.integers(0, 23),
    tz=st.sampled_from(["UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kathmandu"]),
    after=st.datetimes(
        min_value=datetime(2030, 1, 1), max_value=datetime(2032, 1, 1), timezones=st.just(UTC)
    ),
)
def test_fire_times_are_strictly_increasing_and_after_the_start(minute, hour, tz, after):
    times = next_fire_times(f"{minute} {hour} * * *", after, tz, 4)
    assert len(times) == 4
    assert times[0] > after
    assert all(a < b for a, b in zip(times, times[1:], strict=False))
    # A daily job fires at most once per local day.
    from zoneinfo import ZoneInfo

    days = [moment.astimezone(ZoneInfo(tz)).date() for moment in times]
    assert len(set(days)) == len(days)


def test_iterators_of_one_expression_do_not_share_their_position():
    from models.cron import fire_times

    early = fire_times("0 * * * *", utc(2030, 1, 1, 0, 30), "UTC")
    late = fire_times("0 * * * *", utc(2030, 6, 1, 0, 30), "UTC")
    assert [next(early), next(late), next(early), next(late)] == [
        utc(2030, 1, 1, 1),
        utc(2030, 6, 1, 1),
        utc(2030, 1, 1, 2),
        utc(2030, 6, 1, 2),
    ]


NOW = datetime(2030, 1, 7, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cron", "tz"),
    [
        # 01:30 on the last Sunday of March does not exist in London: croniter alone searched to year 9999.
        ("30 1 * 3 L0", "Europe/London"),
        # Every minute of the gap hour only: 60 passed-over candidates a year, 600 in the horizon.
        ("* 1 * 3 L0", "Europe/London"),
        ("* 2 * 3 0#2", "America/New_York"),
    ],
)
def test_a_cron_that_never_fires_in_its_zone_ends_at_the_horizon_with_none(cron, tz):
    assert next_fire_time(cron, NOW, tz) is None
    assert next_fire_times(cron, NOW, tz, 5) == []
    assert "within the next 10 years" in schedule_problem(cron, tz, NOW)


@pytest.mark.parametrize(
    ("cron", "tz"),
    [("30 1 * 3 L0", "UTC"), ("0 0 29 2 *", "UTC"), ("30 2 * * *", "America/New_York"), ("@daily", "EST")],
)
def test_a_cron_that_fires_within_ten_years_has_no_schedule_problem(cron, tz):
    assert schedule_problem(cron, tz, NOW) is None


@pytest.mark.parametrize(
    ("zone", "accepted"),
    [
        ("UTC", True),
        ("Europe/London", True),
        ("US/Eastern", True),  # an IANA link: accepted, behaves as America/New_York
        ("EST", True),
        ("America", False),  # a directory of the zone database: IsADirectoryError before
        ("Etc", False),
        ("Factory", False),
        ("posixrules", False),
        ("right/UTC", False),
        ("posix/Europe/London", False),
        ("localtime", False),
        ("../../etc/passwd", False),
    ],
)
def test_only_iana_zone_names_are_zones(zone, accepted):
    assert (timezone_problem(zone) is None) is accepted
