import random
from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId

from worker.misfires import classify_missed
from worker.retry import retry_delay
from worker.timetable import Timetable


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_jobs_sharing_a_cron_and_zone_share_one_group():
    timetable = Timetable()
    now = utc(2030, 1, 1, 12, 0, 30)
    ids = [ObjectId() for _ in range(3)]
    for job_id in ids:
        timetable.put(job_id, "* * * * *", "UTC", now)
    other = ObjectId()
    timetable.put(other, "*/5 * * * *", "UTC", now)
    assert timetable.next_fire() == utc(2030, 1, 1, 12, 1)
    due = list(timetable.pop_due(utc(2030, 1, 1, 12, 1)))
    assert len(due) == 1 and set(due[0][2]) == set(ids)
    assert timetable.next_fire() == utc(2030, 1, 1, 12, 2)
    assert timetable.next_fire_of(other) == utc(2030, 1, 1, 12, 5)


def test_moving_and_removing_jobs_leaves_no_stale_fire():
    timetable = Timetable()
    now = utc(2030, 1, 1, 12, 0)
    job = ObjectId()
    timetable.put(job, "* * * * *", "UTC", now)
    timetable.put(job, "0 * * * *", "UTC", now)
    assert timetable.next_fire() == utc(2030, 1, 1, 13, 0)
    timetable.remove(job)
    assert timetable.next_fire() is None and len(timetable) == 0
    assert list(timetable.pop_due(utc(2031, 1, 1))) == []


def test_an_overdue_group_fires_once_and_moves_past_now():
    timetable = Timetable()
    job = ObjectId()
    timetable.put(job, "* * * * *", "UTC", utc(2030, 1, 1, 12, 0))
    due = list(timetable.pop_due(utc(2030, 1, 1, 12, 5, 30)))
    assert [slot for slot, _, _ in due] == [utc(2030, 1, 1, 12, 1)]
    assert timetable.next_fire() == utc(2030, 1, 1, 12, 6)


@pytest.mark.parametrize(
    ("first_missed", "now", "grace", "run_slot", "skipped"),
    [
        (utc(2030, 1, 1, 12, 0), utc(2030, 1, 1, 12, 0, 30), 60, utc(2030, 1, 1, 12, 0), 0),
        (utc(2030, 1, 1, 12, 0), utc(2030, 1, 1, 12, 3, 30), 60, utc(2030, 1, 1, 12, 3), 3),
        (utc(2030, 1, 1, 12, 0), utc(2030, 1, 1, 12, 3, 30), 10, None, 4),
    ],
)
def test_missed_slots_split_into_one_coalesced_run_and_a_skipped_count(
    first_missed, now, grace, run_slot, skipped
):
    misfire = classify_missed("* * * * *", "UTC", first_missed, now, grace)
    assert misfire.run_slot == run_slot and misfire.skipped_count == skipped


def test_nothing_missed_when_the_planned_slot_is_ahead():
    assert classify_missed("* * * * *", "UTC", utc(2030, 1, 1, 12, 1), utc(2030, 1, 1, 12, 0), 60) is None


@pytest.mark.parametrize(
    ("attempt", "low", "high"), [(1, 5, 10), (2, 10, 20), (3, 20, 40), (6, 30, 60), (20, 30, 60)]
)
def test_retry_delay_doubles_with_jitter_and_is_capped(attempt, low, high):
    rng = random.Random(7)
    delays = [retry_delay(attempt, base=10, multiplier=2, cap=60, rng=rng) for _ in range(200)]
    assert all(low <= d <= high for d in delays)
    assert max(delays) - min(delays) > (high - low) / 2, "jitter spreads retries out"


def test_a_timetable_of_ten_thousand_jobs_in_a_hundred_groups_has_a_hundred_timers():
    timetable = Timetable()
    now = utc(2030, 1, 1, 12, 0)
    for i in range(10_000):
        timetable.put(ObjectId(), f"{i % 100 % 60} * * * *", "UTC" if i % 100 < 60 else "Europe/Berlin", now)
    assert len(timetable) == 10_000
    assert len(timetable._heap) == 100
    assert timetable.next_fire() == now + timedelta(minutes=1)


MINUTES = [utc(2030, 1, 1, 12, minute) for minute in range(10)]


@pytest.mark.parametrize(
    ("fired", "ranges", "start", "gaps"),
    [
        ([], [], 0, [(0, 9)]),
        ([], [], 4, [(4, 9)]),
        ([3], [], 0, [(0, 2), (4, 9)]),  # a slot this term fired before an earlier catch-up got there
        ([0, 9], [(2, 4)], 0, [(1, 1), (5, 8)]),
        ([], [(0, 9)], 0, []),
        ([2], [], 5, [(5, 9)]),  # records before the first missed slot do not count
    ],
)
def test_catch_up_skips_exactly_the_slots_already_recorded(fired, ranges, start, gaps):
    from worker.recovery import Covered

    covered = Covered()
    for index in fired:
        covered.add({"scheduledFor": MINUTES[index]})
    for first, last in ranges:
        covered.add(
            {
                "scheduledFor": MINUTES[first],
                "missed": {"firstSlot": MINUTES[first], "lastSlot": MINUTES[last]},
            }
        )
    assert covered.gaps(MINUTES, start) == gaps


@pytest.mark.parametrize(
    ("size", "cpu_seconds", "next_size"),
    [
        (500, 3.0, 5),  # 6 ms a document against a 30 ms budget: five at once, not halving for minutes
        (500, 0.001, 500),  # never over the largest
        (4, 0.001, 8),
        (1, 1.0, 1),
        (100, 0.02, 100),  # between half the budget and the budget: kept
    ],
)
def test_a_write_sizes_the_next_by_the_cpu_time_it_held_the_loop(monkeypatch, size, cpu_seconds, next_size):
    from worker import paced_writes

    pace = paced_writes.Pace(largest=500)
    pace.size = size
    clock = iter([10.0, 10.0 + cpu_seconds])
    monkeypatch.setattr(paced_writes.time, "thread_time", lambda: next(clock))
    with pace.timed(size):
        pass
    assert pace.size == next_size
