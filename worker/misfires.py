"""What to do with slots that came due while no leader was firing them."""

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from models.cron import fire_times

# Counting stops here: a job missed for years need not be walked slot by slot.
MAX_COUNTED = 100_000
# Fire times computed between two yields to the event loop: a walk over a day of minutely slots must not
# hold up the fire loop, the lease renewal or a shutdown.
SLICE = 200


@dataclass(frozen=True)
class Misfire:
    run_slot: datetime | None  # the newest missed slot, run once if within the grace period
    skipped_count: int  # older slots, recorded as one skipped execution
    first_skipped: datetime | None
    last_skipped: datetime | None


def _walk(cron: str, timezone: str, first_missed: datetime, now: datetime) -> Iterator[datetime]:
    if first_missed > now:
        return
    yield first_missed
    for count, moment in enumerate(fire_times(cron, first_missed, timezone), start=2):
        if moment > now or count > MAX_COUNTED:
            return
        yield moment


async def missed_slots(cron: str, timezone: str, first_missed: datetime, now: datetime) -> list[datetime]:
    """`first_missed` and every fire time after it up to `now`, computed in slices that yield. One walk
    serves every job of a (cron, zone) group: each job's own slots are a suffix of it."""
    slots = []
    for moment in _walk(cron, timezone, first_missed, now):
        slots.append(moment)
        if len(slots) % SLICE == 0:
            await asyncio.sleep(0)
    return slots


def classify(slots: list[datetime], now: datetime, grace_seconds: float) -> Misfire | None:
    """The newest slot runs (coalesced) if still within grace, the rest are skipped. None for no slots."""
    if not slots:
        return None
    newest = slots[-1]
    run_slot = newest if now - newest <= timedelta(seconds=grace_seconds) else None
    skipped = slots[:-1] if run_slot else slots
    return Misfire(
        run_slot=run_slot,
        skipped_count=len(skipped),
        first_skipped=skipped[0] if skipped else None,
        last_skipped=skipped[-1] if skipped else None,
    )


def classify_missed(
    cron: str, timezone: str, first_missed: datetime, now: datetime, grace_seconds: float
) -> Misfire | None:
    """Slots from `first_missed` up to `now`, classified; None when nothing was missed."""
    return classify(list(_walk(cron, timezone, first_missed, now)), now, grace_seconds)
