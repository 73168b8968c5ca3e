"""The seam between the worker and the executor: what a run is asked to do and how it ended."""

import asyncio
from dataclasses import dataclass, field
from typing import Any, Protocol

from models.execution import ExecutionStatus


@dataclass
class RunRequest:
    """One execution to carry out. `cancel` is set by the worker when the run must stop early."""

    execution: dict[str, Any]
    job: dict[str, Any]
    timeout_seconds: float
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    # Called with (stats, log lines) while the run goes, so progress is visible before the end.
    progress: Any = None
    # Called with the child's pid once it has started.
    started: Any = None
    # Asked right before the child starts: a reason it must not (its worker no longer holds the job's lock,
    # say after a pause past the lock's lease), or None. The run then ends abandoned, its source never run.
    may_start: Any = None
    # Asked right before the child starts, once `may_start` let it: the seconds since the job's lock was taken
    # or last renewed. The source's lease is sized from a renewal (executor/runner.py), so its first one is
    # shortened by that much: a source started late in the lock's lease (the reads before the start, a
    # destination slow to connect) is gone before the lock can lapse, even if no renewal comes.
    lock_age: Any = None
    # Set by the runner once the source runs: the worker calls it with each renewal of the job's lock, and
    # the source is stopped when the calls stop (a paused or cut-off worker; executor/supervisor.py).
    renewed: Any = None


@dataclass
class RunOutcome:
    status: ExecutionStatus
    error: str | None = None
    exit_code: int | None = None
    pid: int | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    # The whole capped tail (not only what progress reports have not flushed): it replaces the stored one.
    log_tail: list[str] = field(default_factory=list)
    # New incremental cursors per entity; saved on the job only if the run succeeded under a current term.
    cursors: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None


class Runner(Protocol):
    async def run(self, request: RunRequest) -> RunOutcome: ...
