"""How long the workers go without a leader when the leader crashes, and when it stops gracefully.

    python bench/failover.py                 # 20 trials of each, lease 2 s: about 90 s
    python bench/failover.py --trials 50 --lease 1

What runs: three in-process `Scheduler`s on one in-memory database, each with its own real clock
(asyncio's), the lease shortened to `--lease` seconds with the renewal interval and the skew margin kept in
the default proportions (renew = lease / 3, skew = lease / 15). No jobs: only the election is measured.

- crash: the leader's task is cancelled where it stands (a SIGKILL: no release, the lease document still
  names it); the figure is the time until another worker's `leading` is set.
- graceful: the leader is asked to stop (SIGTERM) and releases its lease; the time until another leads.

Each is printed as seconds and as a multiple of the lease. The target in issue 8: crash takeover within
lease + 1 s (at the default 30 s lease), so the ratio is what carries over from this short lease; a standby
that only retries every renewal interval gives up to (lease + renew) / lease = 1.33.
"""

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import structlog  # noqa: E402

from bench.schedule_scale import NoopRunner, fresh_database, percentiles  # noqa: E402
from models.clock import SystemClock  # noqa: E402
from models.settings import Settings  # noqa: E402
from worker.scheduler import Scheduler  # noqa: E402

WORKERS = 3


class Worker:
    def __init__(self, db, settings: Settings, name: str):
        self.stop = asyncio.Event()
        self.scheduler = Scheduler(
            db=db, runner=NoopRunner(), clock=SystemClock(), settings=settings, worker_id=name
        )
        self.task = asyncio.create_task(self.scheduler.run(self.stop))


async def next_leader(workers: list[Worker], previous: Worker, limit: float) -> float | None:
    """Seconds until a worker other than `previous` leads, or None past `limit`."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        if any(w is not previous and w.scheduler.leading.is_set() for w in workers):
            return time.perf_counter() - started
        await asyncio.sleep(0.002)
    return None


async def trials(kind: str, count: int, lease: float) -> list[float]:
    db = await fresh_database()
    settings = Settings(
        _env_file=None,
        worker_lease_seconds=lease,
        worker_renew_seconds=lease / 3,
        worker_clock_skew_seconds=lease / 15,
        shutdown_grace_seconds=0,
    )
    workers = [Worker(db, settings, f"bench:{i}:{kind}") for i in range(WORKERS)]
    gaps: list[float] = []
    serial = WORKERS
    for _ in range(count):
        leader = None
        while leader is None:
            await asyncio.sleep(0.01)
            leader = next((w for w in workers if w.scheduler.leading.is_set()), None)
        # Let the term settle into its renewal rhythm, at a point of it that varies from trial to trial.
        await asyncio.sleep(lease * (0.5 + (serial % 7) / 10))
        if kind == "crash":
            leader.task.cancel()
        else:
            leader.stop.set()
        gap = await next_leader(workers, leader, limit=lease * 10)
        gaps.append(gap if gap is not None else float("inf"))
        await asyncio.gather(leader.task, return_exceptions=True)
        workers.remove(leader)
        workers.append(Worker(db, settings, f"bench:{serial}:{kind}"))
        serial += 1
    for worker in workers:
        worker.stop.set()
    await asyncio.gather(*(w.task for w in workers), return_exceptions=True)
    return gaps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--lease", type=float, default=2.0)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    print(f"in-process schedulers, real clock, in-memory database; lease {args.lease:g} s, {WORKERS} workers")
    for kind in ("crash", "graceful"):
        gaps = asyncio.run(trials(kind, args.trials, args.lease))
        figures = percentiles(gaps)
        print(
            f"{kind:9} takeover  p50 {figures['p50']:.3f} s ({figures['p50'] / args.lease:.2f} x lease)"
            f"   p99 {figures['p99']:.3f} s ({figures['p99'] / args.lease:.2f} x lease)"
            f"   max {figures['max']:.3f} s   n={figures['n']}"
        )


if __name__ == "__main__":
    main()
