"""Reads shared for a moment: runs launched within a second share one read of a document; an edit reaches
the next read after that second."""

import asyncio
from datetime import timedelta

import pytest

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


async def test_runs_launched_together_wait_for_the_one_read_in_flight():
    recent = RecentReads(FakeClock())
    gate = asyncio.Event()
    loads = []

    async def load():
        loads.append(1)
        await gate.wait()
        return {"name": "ds"}

    first = asyncio.ensure_future(recent.get("ds", load))
    second = asyncio.ensure_future(recent.get("ds", load))
    third = asyncio.ensure_future(recent.get("ds", load))
    await asyncio.sleep(0)
    third.cancel()  # one launch given up does not cancel the read the others wait for
    gate.set()
    assert await first == await second == {"name": "ds"}
    assert len(loads) == 1


async def test_a_failed_read_reaches_every_waiter_and_the_next_get_reads_again():
    recent = RecentReads(FakeClock())
    gate = asyncio.Event()
    calls = []

    async def failing():
        calls.append(1)
        await gate.wait()
        raise ConnectionError("database gone")

    waiters = [asyncio.ensure_future(recent.get("ds", failing)) for _ in range(2)]
    await asyncio.sleep(0)
    gate.set()
    for waiter in waiters:
        with pytest.raises(ConnectionError):
            await waiter

    async def working():
        calls.append(2)
        return {"name": "ds"}

    assert await recent.get("ds", working) == {"name": "ds"}
    assert calls == [1, 2]
