"""Cached upcoming fire times equal fresh ones, whatever the order in which they are asked for."""

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from models.cron import next_fire_times, upcoming_fire_times

START = datetime(2030, 3, 8, tzinfo=UTC)  # spans the US and EU spring-forward
SCHEDULES = [("*/7 * * * *", "UTC"), ("30 2 * * *", "America/New_York"), ("0 1 * * 0", "Europe/Berlin")]


@settings(max_examples=60, deadline=None)
@given(
    schedule=st.sampled_from(SCHEDULES),
    offsets=st.lists(st.integers(min_value=0, max_value=30 * 24 * 3600), min_size=1, max_size=12),
)
def test_cached_fire_times_equal_fresh_ones_in_any_order_of_asking(schedule, offsets):
    cron, zone = schedule
    for offset in offsets:
        after = START + timedelta(seconds=offset)
        assert upcoming_fire_times(cron, after, zone, 5) == next_fire_times(cron, after, zone, 5)


def test_a_cached_list_is_not_shared_with_callers():
    after = START + timedelta(days=40)
    upcoming_fire_times("15 * * * *", after, "UTC", 3).clear()
    assert len(upcoming_fire_times("15 * * * *", after, "UTC", 3)) == 3
