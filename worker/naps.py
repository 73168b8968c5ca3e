"""Sleeping on the injected clock, cut short when something wakes the sleeper."""

import asyncio

from models.clock import Clock


async def nap(clock: Clock, wake: asyncio.Event, seconds: float, *, consume: bool = True) -> bool:
    """Sleep `seconds` on `clock` or until `wake` is set, whichever comes first; True if woken.
    With `consume`, the wake-up is used up (the event cleared); a stop signal is not consumed."""
    if wake.is_set():
        if consume:
            wake.clear()
        return True
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    waiter = asyncio.ensure_future(wake.wait())
    try:
        await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()
        waiter.cancel()
    woken = wake.is_set()
    if consume:
        wake.clear()
    return woken
