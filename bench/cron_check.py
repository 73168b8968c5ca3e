"""How long the ten-year schedule check takes at its worst, beside an ordinary next-fire-time computation.

Prints, for crons that never fire in their zone (every candidate of the ten-year horizon is looked at),
the milliseconds one check takes (best of 5) and the ratio to `@daily` in UTC measured in the same run.
The budget is 50 ms: the check runs on the API's event loop, inside request validation.
"""

import time
from datetime import UTC, datetime

from models.cron import next_fire_time, schedule_problem

CASES = [
    ("30 1 * 3 L0", "Europe/London"),
    ("* 1 * 3 L0", "Europe/London"),
    ("* 2 * 3 0#2", "America/New_York"),
    ("0 0 29 2 *", "UTC"),
]


def best_of(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times) * 1000


def main() -> None:
    now = datetime.now(UTC)
    baseline = best_of(lambda: next_fire_time("@daily", now, "UTC"))
    print(f"baseline: next_fire_time('@daily', UTC) {baseline:.3f} ms")
    for cron, tz in CASES:
        took = best_of(lambda cron=cron, tz=tz: schedule_problem(cron, tz, now))
        print(f"{cron!r:16} {tz:18} {took:7.2f} ms  {took / baseline:8.0f}x baseline  (budget 50 ms)")


if __name__ == "__main__":
    main()
