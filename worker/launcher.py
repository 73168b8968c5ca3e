"""The life of one execution on this worker: claim, run, outcome, retry. Every write of it goes through
the execution store; the job's status through the fenced status writer."""

import asyncio
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from bson import ObjectId
from pymongo.errors import PyMongoError

from executor.log_capture import MAX_LINES
from executor.outcome import Runner, RunOutcome, RunRequest
from models.clock import Clock
from models.collections import SYNC_JOBS
from models.cron import next_fire_time
from models.execution import RETRYABLE_STATUSES, ExecutionStatus, Trigger, finished_fields
from models.execution_store import ExecutionStore
from models.job_locks import JobLocks
from models.settings import Settings
from models.sync_job import OverlapPolicy, StoredRetryPolicy, SyncJobSpec
from worker.fair_slots import FairSlots
from worker.job_status import Commit, JobStatusWriter
from worker.naps import nap
from worker.retry import retry_delay

log = structlog.get_logger("syncjobs.worker")
MISFIRE_GRACE_DEFAULT = SyncJobSpec.model_fields["misfire_grace_seconds"].default
SHUTDOWN = "shutdown"
# How loud an ended run is in the log: a failure is worth a look, an abandoned run is an incident.
FINISHED_LEVEL = {
    ExecutionStatus.FAILED: "warning",
    ExecutionStatus.TIMED_OUT: "warning",
    ExecutionStatus.ABANDONED: "error",
}


DISPATCH_UNBOUNDED = 500  # what a worker without a run-slot limit takes per dispatch pass


async def no_term() -> int | None:
    return None


def log_finished(status: ExecutionStatus, **fields: Any) -> None:
    getattr(log, FINISHED_LEVEL.get(status, "info"))("execution_finished", status=status.value, **fields)


@dataclass(frozen=True)
class Busy:
    """Another execution holds the job's lock until `until` (renewed while it runs): wait, then try again."""

    until: datetime | None


LOCK_LAPSED = "its job lock lapsed before the source started (this worker was paused or cut off)"


@dataclass
class Running:
    request: RunRequest
    # Until when this worker's hold on the job's lock is known to last (the claim, then each renewal, plus
    # the lock's TTL), by this worker's clock.
    held_until: datetime
    cancel_reason: str | None = None

    def cancel(self, reason: str) -> None:
        if self.cancel_reason is None:
            self.cancel_reason = reason
        self.request.cancel.set()


def schedule_no_longer_fires(job: dict[str, Any], slot: datetime) -> str | None:
    """Why a slot must not run under the job as it is now (disabled, cron moved); None if it may."""
    if not job.get("enabled"):
        return "the job was disabled"
    schedule = job["schedule"]
    if next_fire_time(schedule["cron"], slot - timedelta(milliseconds=1), schedule["timezone"]) != slot:
        return "the job's schedule changed"
    return None


class Launcher:
    """Runs the executions this worker claims, at most `max_concurrent_runs` at once; when more wait,
    workspaces take turns (worker.fair_slots). Every worker has one, the leader's included: whichever
    worker takes a run's job lock first runs it."""

    def __init__(
        self,
        db,
        *,
        store: ExecutionStore,
        locks: JobLocks,
        runner: Runner,
        clock: Clock,
        settings: Settings,
        worker_id: str,
        rng: random.Random | None = None,
        max_concurrent: int | None = None,
        current_term=None,
        on_retry=lambda run_after: None,
        on_free=lambda: None,
        on_blocked=lambda job_id: None,
        on_lost=lambda: None,
    ):
        self._store = store
        self._locks = locks
        # The leader term now (awaited, may be cached briefly): a slot an earlier term fired is held to its
        # misfire grace. Asked only of a late slot.
        self._current_term = current_term or no_term
        self._jobs = db[SYNC_JOBS]
        self._runner = runner
        self._clock = clock
        self._settings = settings
        self._worker_id = worker_id
        self._status = JobStatusWriter(db)
        self._rng = rng or random.Random()
        limit = max_concurrent if max_concurrent is not None else settings.max_concurrent_runs
        self.capacity = limit
        self._per_workspace = settings.max_runs_per_workspace
        self._slots = FairSlots(limit, per_workspace=self._per_workspace) if limit > 0 else None
        self.running: dict[ObjectId, Running] = {}
        self._tasks: dict[ObjectId, asyncio.Task] = {}
        self._jobs_in_hand: dict[ObjectId, ObjectId] = {}  # execution -> its job
        # Runs waiting for a run slot or for their job's lock: they hold nothing yet, so a drain lets them
        # go at once (they stay queued for the next worker) instead of starting them.
        self._waiting: set[ObjectId] = set()
        self._draining = False
        # Set once the shutdown's cancel pass has gone by: a run claimed in that moment is canceled at once.
        self._past_grace = False
        # Set when this worker releases a job's lock: runs of that job waiting for it try again at once.
        self._lock_freed: dict[ObjectId, asyncio.Event] = {}
        # Jobs whose lock this worker let go (or saw lapse) since the dispatcher's last pass.
        self.released_jobs: set[ObjectId] = set()
        self._pids: dict[ObjectId, int] = {}
        # Called with the moment a retry this worker queued comes due.
        self._on_retry = on_retry
        # Called when an execution leaves this worker: a run slot is free again.
        self._on_free = on_free
        # Called with a job whose manual run or retry found another execution holding its lock: the run
        # stays queued, for whichever worker looks once the lock is let go.
        self._on_blocked = on_blocked
        # Called when a claim finds its execution started elsewhere or no longer queued: what this worker
        # last read of the queue is out of date.
        self._on_lost = on_lost

    @property
    def in_flight(self) -> set[ObjectId]:
        return set(self._tasks)

    @property
    def free(self) -> int:
        """How many more executions this worker takes now: none while draining. A run waiting for its
        job's lock takes no capacity: it may wait on another worker's run for long."""
        if self._draining:
            return 0
        if self.capacity <= 0:
            return DISPATCH_UNBOUNDED
        waiting_for_locks = sum(1 for job_id in self._jobs_in_hand.values() if job_id in self._lock_freed)
        return max(self.capacity - len(self._tasks) + waiting_for_locks, 0)

    def jobs_in_hand(self) -> set[ObjectId]:
        return set(self._jobs_in_hand.values())

    @property
    def draining(self) -> bool:
        return self._draining

    def lock_waits(self) -> set[ObjectId]:
        """Jobs whose lock a run here waits for (another execution, maybe on another worker, holds it)."""
        return set(self._lock_freed)

    def lock_freed(self, job_id: ObjectId) -> None:
        self.released_jobs.add(job_id)
        freed = self._lock_freed.pop(job_id, None)
        if freed is not None:
            freed.set()

    async def read_jobs(self, executions: list[dict[str, Any]]) -> None:
        """Attach to each execution its job as stored now (`job`, None once deleted): one read for all the
        runs a dispatch pass claims, instead of one each."""
        ids = list({execution["jobId"] for execution in executions})
        found = {doc["_id"]: doc for doc in await self._jobs.find({"_id": {"$in": ids}}).to_list(None)}
        for execution in executions:
            execution["job"] = found.get(execution["jobId"])

    def submit(self, execution: dict[str, Any]) -> bool:
        """Start an execution in the background; False if this worker already has it. An execution read
        with its job (`job`) runs that job as read, unless it has to wait first."""
        execution_id = execution["_id"]
        if execution_id in self._tasks:
            return False
        task = asyncio.create_task(self._launch(execution), name=f"execution-{execution_id}")
        self._tasks[execution_id] = task
        self._jobs_in_hand[execution_id] = execution["jobId"]
        task.add_done_callback(lambda _: self._done(execution_id))
        return True

    def _done(self, execution_id: ObjectId) -> None:
        self._tasks.pop(execution_id, None)
        self._jobs_in_hand.pop(execution_id, None)
        self._on_free()

    def cancel(self, execution_id: ObjectId, reason: str) -> None:
        running = self.running.get(execution_id)
        if running is not None:
            running.cancel(reason)

    async def drain(self, grace_seconds: float) -> None:
        """Let running syncs finish for up to `grace_seconds`, then cancel what is left and wait. Says once
        what it waits for, and once per sync how it ended. Claims nothing from the moment it begins."""
        self._draining = True
        for execution_id in list(self._waiting):
            self._tasks[execution_id].cancel()
        tasks = list(self._tasks.values())
        if not tasks:
            return
        running = dict(self.running)
        if running:
            log.info(
                "shutdown_waiting_for_syncs",
                count=len(running),
                execution_ids=[str(execution_id) for execution_id in running],
                grace_seconds=grace_seconds,
            )
        grace = asyncio.ensure_future(self._clock.sleep(grace_seconds))
        try:
            await asyncio.wait([*tasks, grace], return_when=asyncio.FIRST_COMPLETED)
            while not grace.done() and any(not task.done() for task in tasks):
                await asyncio.wait(
                    [*[t for t in tasks if not t.done()], grace], return_when=asyncio.FIRST_COMPLETED
                )
        finally:
            grace.cancel()
        pending = [task for task in tasks if not task.done()]
        if pending:
            self._past_grace = True
            for run in list(self.running.values()):
                run.cancel(SHUTDOWN)
            # The runner kills its child within the kill grace; this bound only guards against a stuck runner.
            await asyncio.wait(pending, timeout=self._settings.kill_grace_seconds + 5)

    async def _launch(self, execution: dict[str, Any]) -> None:
        with structlog.contextvars.bound_contextvars(
            workspace_id=execution["workspaceId"],
            job_id=str(execution["jobId"]),
            execution_id=str(execution["_id"]),
        ):
            try:
                while not self._draining:
                    busy = await self._run_in_slot(execution)
                    if busy is None:
                        return
                    # Waiting holds no run slot, and wakes on the lock's release (here, or seen by the
                    # dispatcher's look at the locks) or at its lease's end: never a retry loop.
                    with self._waits(execution["_id"]):
                        waiting = self._wait_for_lock(execution["jobId"], busy)
                        self._on_free()  # a run waiting for its job's lock takes no capacity
                        await waiting
                    execution.pop("job", None)  # the job may have changed meanwhile: read it again
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.exception("execution_launch_failed")
                try:
                    await self._store.fail_to_launch(
                        execution["_id"],
                        owner=self._worker_id,
                        error=f"the worker failed to run it: {error!r}",
                        now=self._clock.now(),
                    )
                except PyMongoError:
                    pass  # the database is what failed; recovery ends a stuck run once its lock lapses

    async def _run_in_slot(self, execution: dict[str, Any]) -> Busy | None:
        if self._slots is None:
            return await self._run(execution)
        with self._waits(execution["_id"]):
            async with self._slots.slot(execution["workspaceId"], execution["scheduledFor"]):
                self._waiting.discard(execution["_id"])
                return await self._run(execution)

    @contextmanager
    def _waits(self, execution_id: ObjectId) -> Iterator[None]:
        """While in this block, the run holds nothing: a drain may cancel it."""
        self._waiting.add(execution_id)
        try:
            yield
        finally:
            self._waiting.discard(execution_id)

    async def _wait_for_lock(self, job_id: ObjectId, busy: Busy) -> None:
        freed = self._lock_freed.setdefault(job_id, asyncio.Event())
        seconds = (busy.until - self._clock.now()).total_seconds() if busy.until else 0.0
        if seconds > 0:
            await nap(self._clock, freed, seconds, consume=False)
        else:
            await asyncio.sleep(0)  # the holder's lease just ran out: the next try takes the lock

    async def _run(self, execution: dict[str, Any]) -> Busy | None:
        """Run the execution if its job's lock is free; Busy when it must wait for the lock."""
        execution_id, job_id = execution["_id"], execution["jobId"]
        if self._draining:
            return None
        # No pause read here: a pause ends the queued runs of its scope itself (models.execution_store),
        # so a paused run is no longer queued and its claim fails.
        job = execution["job"] if "job" in execution else await self._jobs.find_one({"_id": job_id})
        if job is None:
            await self._end_unstarted(execution_id, ExecutionStatus.CANCELED, "the job was deleted")
            return None
        if execution["trigger"] == Trigger.SCHEDULE.value:
            # The timetable fires from memory; the job as stored now has the last word on this slot.
            stale = schedule_no_longer_fires(job, execution["scheduledFor"]) or await self._too_late(
                execution, job
            )
            if stale:
                await self._end_unstarted(execution_id, ExecutionStatus.SKIPPED, stale)
                return None
        if self._draining:
            return None  # the checks above awaited the database: a stop may have begun meanwhile
        started = await self._claim(execution)
        if isinstance(started, Busy):
            return await self._on_busy(execution, job)
        if started is None:
            return None  # canceled before it started, or another worker started it
        if await self._over_workspace_cap(started):
            return None
        try:
            log.info("execution_started", trigger=started["trigger"], attempt=started["attempt"])
            outcome, reason = await self._execute(started, job)
            await self._finish(started, job, outcome, reason)
        finally:
            # After the outcome is recorded: the next run of the job may go, on any worker.
            await self._locks.release(job_id, execution_id)
            self.lock_freed(job_id)
        return None

    async def _over_workspace_cap(self, started: dict[str, Any]) -> bool:
        """MAX_RUNS_PER_WORKSPACE holds across the fleet: the dispatcher counts before it claims, and a claim
        that raced others past the cap goes back to the queue. Each claim counts the others once it is
        recorded running, so the last of any cap + 1 to be recorded sees the other cap and backs off: the cap
        is never exceeded. Claims made at the same moment may all back off; they are tried again at the next
        look."""
        if self._per_workspace is None or await self._store.others_running(started) < self._per_workspace:
            return False
        await self._store.hand_back(started, owner=self._worker_id, now=self._clock.now())
        await self._locks.release(started["jobId"], started["_id"])
        self.lock_freed(started["jobId"])
        log.info("claim_handed_back_workspace_cap", cap=self._per_workspace)
        return True

    async def _claim(self, execution: dict[str, Any]) -> dict[str, Any] | Busy | None:
        """Take the job's lock for this execution, then move it `queued -> running`. The lock comes first:
        a crash between the two leaves a queued execution and a lock that lapses, both harmless. Busy while
        another execution holds the lock; None (the lock let go again) when the execution is no longer
        queued; else the running execution (the fields the dispatcher read, now running)."""
        execution_id, job_id = execution["_id"], execution["jobId"]
        if not await self._locks.acquire(job_id, execution_id, now=self._clock.now()):
            return Busy(None)
        as_read = {key: value for key, value in execution.items() if key != "job"}  # not a field of it
        won, started = await self._store.claim(as_read, owner=self._worker_id, now=self._clock.now())
        if not won:
            # An execution whose lock lapsed (its worker died) is still recorded running: the lock is ours
            # now, so it has ended; say so and try once more.
            stale = await self._store.running_of_job(job_id)
            if stale is not None and stale["_id"] not in self.running:
                if await self._store.abandon(stale["_id"], self._clock.now()):
                    log_finished(ExecutionStatus.ABANDONED, abandoned_id=str(stale["_id"]))
            won, started = await self._store.claim(as_read, owner=self._worker_id, now=self._clock.now())
        if started is None:
            await self._locks.release(job_id, execution_id)
            self._on_lost()
        return started

    async def _too_late(self, execution: dict[str, Any], job: dict[str, Any]) -> str | None:
        """A slot fired by an earlier leader and never started is held to the rule the new leader's catch-up
        applies to slots nobody fired: it runs only within the job's misfire grace and only while no newer
        slot has come due (that one runs instead). Any worker judges it the same way, from the job alone.
        A slot of the current term that waited its turn (the `queue` policy, or a full fleet) is not held
        to it."""
        slot, now = execution["scheduledFor"], self._clock.now()
        schedule = job["schedule"]
        late = (now - slot).total_seconds() > job.get("misfireGraceSeconds", MISFIRE_GRACE_DEFAULT)
        if not late and next_fire_time(schedule["cron"], slot, schedule["timezone"]) > now:
            return None
        if execution.get("firedTerm") == await self._current_term():
            return None
        return "missed"

    async def _execute(self, execution: dict[str, Any], job: dict[str, Any]) -> tuple[RunOutcome, str | None]:
        execution_id = execution["_id"]
        request = RunRequest(
            execution=execution,
            job=job,
            timeout_seconds=job.get("timeoutSeconds") or self._settings.default_timeout_seconds,
            progress=lambda stats, lines: self._progress(execution_id, stats, lines),
            started=lambda pid: self._started(execution_id, pid),
            may_start=lambda: self._lock_lapsed(running),
            lock_age=lambda: self._lock_age(running),
        )
        running = self.running[execution_id] = Running(
            request, held_until=execution["startedAt"] + self._locks.ttl
        )
        if self._past_grace:
            running.cancel(SHUTDOWN)  # claimed while the shutdown's cancel pass went by
        keeper = asyncio.create_task(self._keep_job_lock(execution["jobId"], execution_id, running))
        try:
            outcome = await self._runner.run(request)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.exception("runner_failed")
            outcome = RunOutcome(ExecutionStatus.FAILED, error=f"runner failed: {error!r}")
        finally:
            keeper.cancel()
            self.running.pop(execution_id, None)
        return outcome, running.cancel_reason

    def _lock_lapsed(self, running: Running) -> str | None:
        """Whether this worker may no longer count on the job's lock: past its last known expiry, less the
        clock-skew margin, another worker may have taken the job. Asked by the clock alone, so it costs no
        command: a worker stopped between its claim and the start sees the time that passed."""
        return LOCK_LAPSED if self._lock_left(running) <= 0 else None

    def _lock_left(self, running: Running) -> float:
        """Seconds this worker may still count on the job's lock: to its last known expiry, less the skew."""
        margin = timedelta(seconds=self._settings.worker_clock_skew_seconds)
        return (running.held_until - margin - self._clock.now()).total_seconds()

    def _lock_age(self, running: Running) -> float:
        """Seconds since the job's lock was taken or last renewed (each sets its expiry a TTL ahead)."""
        return (self._clock.now() - (running.held_until - self._locks.ttl)).total_seconds()

    async def _started(self, execution_id: ObjectId, pid: int) -> None:
        # Written with the first progress report (within a second) instead of a write of its own.
        self._pids[execution_id] = pid
        running = self.running.get(execution_id)
        if running is not None and self._lock_lapsed(running):
            running.cancel(LOCK_LAPSED)  # stopped between the check and the start: end it at once

    async def _progress(self, execution_id: ObjectId, stats: dict[str, Any], lines: list[str]) -> None:
        await self._store.progress(
            execution_id,
            stats=stats,
            lines=lines,
            max_lines=MAX_LINES,
            pid=self._pids.pop(execution_id, None),
        )

    async def _keep_job_lock(self, job_id: ObjectId, execution_id: ObjectId, running: Running) -> None:
        # Renewed at a third of its lease so one slow renewal does not let another worker in.
        interval = self._locks.ttl.total_seconds() / 3
        while True:
            await self._clock.sleep(interval)
            try:
                renewed_at = self._clock.now()
                if not await self._locks.renew(job_id, execution_id, now=renewed_at):
                    log.warning("job_lock_lost")
                    running.cancel("the job lock was lost")
                    return
                running.held_until = renewed_at + self._locks.ttl
                if running.request.renewed is not None:
                    running.request.renewed()  # the source may go on for another lease
            except PyMongoError as error:
                log.warning("job_lock_renewal_failed", error=str(error))

    async def _finish(
        self,
        execution: dict[str, Any],
        job: dict[str, Any],
        outcome: RunOutcome,
        reason: str | None,
    ) -> None:
        now = self._clock.now()
        duration_ms = int((now - execution["startedAt"]).total_seconds() * 1000)
        fields: dict[str, Any] = {
            "durationMs": duration_ms,
            "exitCode": outcome.exit_code,
            "pid": outcome.pid,
            "error": outcome.error,
            "reason": outcome.reason or reason,
            "stats": outcome.stats,
        }
        if outcome.log_tail:
            # The runner's tail is capped in bytes too; the one flushed while it ran, in lines only.
            fields["logTail"] = outcome.log_tail
        log_finished(outcome.status, duration_ms=duration_ms, error=outcome.error, reason=fields["reason"])
        self._pids.pop(execution["_id"], None)
        # What outlives the run (the job's status, its cursors, a retry) is written first, fenced by the
        # run's own standing (worker.job_status): the execution's end then says it is, so the leader's
        # recovery has nothing to finish, and a run costs one write less.
        ended = {**execution, **finished_fields(outcome.status, now, 0), **fields}
        await self.commit_outcome(
            ended, job, error=outcome.error or fields["reason"], cursors=outcome.cursors, mark=False
        )
        await self._store.finish(execution["_id"], outcome.status, now, committed=True, **fields)

    async def commit_outcome(
        self,
        execution: dict[str, Any],
        job: dict[str, Any],
        *,
        error: str | None,
        cursors: dict[str, Any],
        mark: bool = True,
    ) -> Commit:
        """Write a finished execution's consequences: the job's status fields (and cursors), unless a run
        that started later has written its own, and a retry if the job allows one; with `mark`, then mark
        the execution committed (a run ending here says so in its own end instead)."""
        status = ExecutionStatus(execution["status"])
        finished = execution["finishedAt"]
        commit = await self._status.record_outcome(
            job,
            execution_id=execution["_id"],
            status=status,
            started_at=execution.get("startedAt"),
            finished_at=finished,
            duration_ms=execution.get("durationMs"),
            error=error,
            cursors=cursors,
        )
        if commit is Commit.SUPERSEDED:
            # A run that started later has its outcome on the job already: this one's stays in its history.
            log.warning("outcome_superseded_by_a_newer_run")
        if commit is not Commit.JOB_GONE:
            # The retry policy holds for every attempt, superseded or not (its slot was not synced).
            await self.queue_retry_if_allowed(execution, job, status, finished)
        if mark:
            await self._store.mark_committed(execution["_id"])
        return commit

    async def queue_retry_if_allowed(
        self, execution: dict[str, Any], job: dict[str, Any], status: ExecutionStatus, now: datetime
    ) -> dict[str, Any] | None:
        attempt = execution["attempt"]
        if status == ExecutionStatus.CANCELED and execution.get("reason") == SHUTDOWN:
            # The job did not fail: this worker stopped. The next leader runs it again at once, whatever
            # the retry policy says.
            delay = 0.0
        else:
            # The model's defaults, the ones the API shows: a job stored without a policy retries as
            # documented.
            # As stored, without input checks: a policy stored before a bound tightened still retries.
            policy: Any = StoredRetryPolicy.model_validate(job.get("retry") or {})
            if status not in RETRYABLE_STATUSES or attempt >= policy.max_attempts:
                return None
            delay = retry_delay(
                attempt,
                base=policy.backoff_seconds,
                multiplier=policy.backoff_multiplier,
                cap=policy.max_backoff_seconds,
                rng=self._rng,
            )
        retry = await self._store.queue_retry(
            execution, job, now=now, run_after=now + timedelta(seconds=delay)
        )
        if retry is not None:
            log.info("retry_queued", attempt=attempt + 1, delay_seconds=round(delay, 1))
            self._on_retry(retry["runAfter"])
        return retry

    async def _on_busy(self, execution: dict[str, Any], job: dict[str, Any]) -> Busy | None:
        """Another execution of the job holds its lock: apply the job's overlap policy. Manual runs and
        retries wait their turn (the API applied the policy to a manual run when it was asked for)."""
        holder = await self._locks.holder(job["_id"])
        now = self._clock.now()
        if holder is None or holder["expiresAt"] <= now:
            return Busy(None)  # let go (or lapsed) since the claim: the next try takes it
        if holder["executionId"] == execution["_id"]:
            self._on_lost()
            return None  # another worker claimed this very execution first: it is that worker's
        busy = Busy(holder["expiresAt"])
        if execution["trigger"] != Trigger.SCHEDULE.value:
            # A manual run or a retry waits its turn in the queue, not in this worker's hand: the worker
            # whose run lets the job go (or any, at its next poll) takes it then.
            self._on_blocked(job["_id"])
            return None
        policy = job.get("overlapPolicy", OverlapPolicy.SKIP.value)
        if policy == OverlapPolicy.SKIP.value:
            await self._end_unstarted(
                execution["_id"],
                ExecutionStatus.SKIPPED,
                "overlap: the previous run was still going",
                blockedBy=holder["executionId"],
            )
            log.info("execution_skipped_overlap")
            return None
        if policy == OverlapPolicy.CANCEL_RUNNING.value:
            reason = "replaced by a newer scheduled run"
            await self._store.cancel(holder["executionId"], now, reason)
            self.cancel(holder["executionId"], reason)
        # queue (and cancel_running): waits for the lock.
        return busy

    async def _end_unstarted(
        self, execution_id: ObjectId, status: ExecutionStatus, reason: str, **extra
    ) -> None:
        await self._store.end_unstarted(execution_id, status, reason, self._clock.now(), **extra)
