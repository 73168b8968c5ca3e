"""What to do with slots that came due while no leader was firing them."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from models.schedule import fire_times

# Counting stops here: a job missed for years need not be walked slot by slot.
MAX_COUNTED = 100_000


@dataclass(frozen=True)
class Misfire:
    run_slot: datetime | None  # the newest missed slot, run once if within the grace period
    skipped_count: int  # older slots, recorded as one skipped execution
    first_skipped: datetime | None
    last_skipped: datetime | None


def classify_missed(
    cron: str, timezone: str, first_missed: datetime, now: datetime, grace_seconds: float
) -> Misfire | None:
    """Slots from `first_missed` up to `now`: the newest runs (coalesced) if still within grace, the rest are
    skipped. None when nothing was missed."""
    if first_missed > now:
        return None
    slots = [first_missed]
    for moment in fire_times(cron, first_missed, timezone):
        if moment > now or len(slots) >= MAX_COUNTED:
            break
        slots.append(moment)
    newest = slots[-1]
    run_slot = newest if now - newest <= timedelta(seconds=grace_seconds) else None
    skipped = slots[:-1] if run_slot else slots
    return Misfire(
        run_slot=run_slot,
        skipped_count=len(skipped),
        first_skipped=skipped[0] if skipped else None,
        last_skipped=skipped[-1] if skipped else None,
    )
