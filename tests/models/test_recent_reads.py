"""Reads shared for a moment: runs launched within a second share one read of a document; an edit reaches
the next read after that second."""

from datetime import timedelta

from models.recent_reads import RecentReads
from tests.fakes import FakeClock


async def test_reads_within_the_max_age_share_one_load_and_an_edit_shows_after_it():
    clock = FakeClock()
    recent = RecentReads(clock, max_age=timedelta(seconds=1))
    stored = {"version": 1}
    loads = []

    async def load():
        loads.append(clock.now())
        return dict(stored)

    assert (await recent.get("ds", load))["version"] == 1
    stored["version"] = 2
    clock.set(clock.now() + timedelta(milliseconds=900))
    assert (await recent.get("ds", load))["version"] == 1  # shared: one load for both
    clock.set(clock.now() + timedelta(milliseconds=200))
    assert (await recent.get("ds", load))["version"] == 2
    assert len(loads) == 2


async def test_a_clock_stepped_back_does_not_stretch_an_entrys_life():
    clock = FakeClock()
    recent = RecentReads(clock)
    loads = []

    async def load():
        loads.append(1)
        return None  # an absent document is shared too

    assert await recent.get("gone", load) is None
    clock.set(clock.now() - timedelta(hours=1))
    assert await recent.get("gone", load) is None
    assert len(loads) == 2
