"""When a failed execution is tried again."""

import random


def retry_delay(
    attempt: int, *, base: float, multiplier: float, cap: float, rng: random.Random | None = None
) -> float:
    """Seconds before attempt `attempt + 1`, after `attempt` failed: exponential, capped, with full jitter
    over the upper half so retries of many jobs that failed together do not arrive together."""
    # Capped so a job failing for days still retries every so often, not every few days.
    ceiling = min(cap, base * multiplier ** (attempt - 1))
    return ceiling / 2 + (rng or random).random() * ceiling / 2
