"""The life of one execution on this worker: job lock, claim, run, outcome, retry."""

import asyncio
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError, PyMongoError

from executor.log_capture import MAX_LINES
from executor.outcome import Runner, RunOutcome, RunRequest
from models.clock import Clock
from models.collections import JOB_EXECUTIONS, SYNC_JOBS
from models.execution import (
    RETRYABLE_STATUSES,
    ExecutionStatus,
    Trigger,
    finished_fields,
    new_execution_document,
)
from models.schedule import next_fire_time
from models.settings import Settings
from models.sync_job import OverlapPolicy
from worker.control import PauseGate
from worker.job_lock import JobLocks
from worker.job_status import JobStatusWriter
from worker.leader_lock import LeaderLock
from worker.retry import retry_delay

log = structlog.get_logger("syncjobs.worker")


@dataclass
class Running:
    request: RunRequest
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
    """Runs executions handed to it, at most `max_concurrent_runs` at once, in the order they arrive."""

    def __init__(
        self,
        db,
        *,
        runner: Runner,
        clock: Clock,
        settings: Settings,
        job_locks: JobLocks,
        leader_lock: LeaderLock,
        rng: random.Random | None = None,
        max_concurrent: int | None = None,
        may_launch=lambda: True,
        on_freed=lambda: None,
    ):
        self._executions = db[JOB_EXECUTIONS]
        # Asked again right before each start: a run that waited for a slot must not start once this
        # worker has stopped leading; it stays queued for the next leader.
        self._may_launch = may_launch
        self._jobs = db[SYNC_JOBS]
        self._runner = runner
        self._clock = clock
        self._settings = settings
        self._job_locks = job_locks
        self._leader_lock = leader_lock
        self._status = JobStatusWriter(db)
        self._pauses = PauseGate(db, clock=clock, settings=settings)
        self._rng = rng or random.Random()
        limit = max_concurrent if max_concurrent is not None else settings.max_concurrent_runs
        self._slots = asyncio.Semaphore(limit) if limit > 0 else None
        self.running: dict[ObjectId, Running] = {}
        self._tasks: dict[ObjectId, asyncio.Task] = {}
        # Called whenever a run ends: a queued run of the same job may go now.
        self._on_freed = on_freed

    @property
    def in_flight(self) -> set[ObjectId]:
        return set(self._tasks)

    def submit(self, execution: dict[str, Any], term: int) -> bool:
        """Start an execution in the background; False if this worker already has it."""
        execution_id = execution["_id"]
        if execution_id in self._tasks:
            return False
        task = asyncio.create_task(self._launch(execution, term), name=f"execution-{execution_id}")
        self._tasks[execution_id] = task
        task.add_done_callback(lambda _: self._done(execution_id))
        return True

    def _done(self, execution_id: ObjectId) -> None:
        self._tasks.pop(execution_id, None)
        self._on_freed()

    def cancel(self, execution_id: ObjectId, reason: str) -> None:
        running = self.running.get(execution_id)
        if running is not None:
            running.cancel(reason)

    async def drain(self, grace_seconds: float) -> None:
        """Let running executions finish for up to `grace_seconds`, then cancel what is left and wait."""
        tasks = list(self._tasks.values())
        if not tasks:
            return
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
            log.warning("shutdown_grace_expired", canceling=len(pending))
            for running in list(self.running.values()):
                running.cancel("worker shutting down")
            # The runner kills its child within the kill grace; this bound only guards against a stuck runner.
            await asyncio.wait(pending, timeout=self._settings.kill_grace_seconds + 5)

    async def _launch(self, execution: dict[str, Any], term: int) -> None:
        with structlog.contextvars.bound_contextvars(
            workspace_id=execution["workspaceId"],
            job_id=str(execution["jobId"]),
            execution_id=str(execution["_id"]),
        ):
            try:
                if self._slots is None:
                    await self._run(execution, term)
                else:
                    async with self._slots:
                        await self._run(execution, term)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.exception("execution_launch_failed")
                await self._fail_unexpectedly(execution["_id"], error)

    async def _run(self, execution: dict[str, Any], term: int) -> None:
        execution_id, job_id = execution["_id"], execution["jobId"]
        if not self._may_launch():
            return
        if await self._pauses.skipped(execution):
            return
        job = await self._jobs.find_one({"_id": job_id})
        if job is None:
            await self._finish_unstarted(execution_id, ExecutionStatus.CANCELED, "the job was deleted")
            return
        if execution["trigger"] == Trigger.SCHEDULE.value:
            # The schedule fires from memory; the job as stored now has the last word on this slot.
            stale = schedule_no_longer_fires(job, execution["scheduledFor"])
            if stale:
                await self._finish_unstarted(execution_id, ExecutionStatus.SKIPPED, stale)
                return
        if not await self._job_locks.acquire(job_id, execution_id, term):
            await self._on_busy(execution, job)
            return
        try:
            now = self._clock.now()
            claimed = await self._executions.find_one_and_update(
                {"_id": execution_id, "status": ExecutionStatus.QUEUED.value, "cancelRequestedAt": None},
                {
                    "$set": {
                        "status": ExecutionStatus.RUNNING.value,
                        "startedAt": now,
                        "workerId": self._leader_lock.worker_id,
                        "lockTerm": term,
                    }
                },
                return_document=ReturnDocument.AFTER,
            )
            if claimed is None:
                return  # canceled before it started, or already taken
            log.info("execution_started", trigger=claimed["trigger"], attempt=claimed["attempt"])
            outcome, reason = await self._execute(claimed, job)
            # Recorded while the lock is still held: recovery must never find this run `running` without it.
            await self._finish(claimed, job, outcome, reason, term)
        finally:
            await self._job_locks.release(job_id, execution_id)

    async def _execute(self, execution: dict[str, Any], job: dict[str, Any]) -> tuple[RunOutcome, str | None]:
        execution_id = execution["_id"]
        request = RunRequest(
            execution=execution,
            job=job,
            timeout_seconds=job.get("timeoutSeconds") or self._settings.default_timeout_seconds,
            progress=lambda stats, lines: self._progress(execution_id, stats, lines),
            started=lambda pid: self._executions.update_one({"_id": execution_id}, {"$set": {"pid": pid}}),
        )
        running = self.running[execution_id] = Running(request)
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

    async def _keep_job_lock(self, job_id: ObjectId, execution_id: ObjectId, running: Running) -> None:
        # Renewed at a third of its TTL so one slow renewal does not let another worker in.
        interval = self._job_locks.ttl.total_seconds() / 3
        while True:
            await self._clock.sleep(interval)
            try:
                if not await self._job_locks.renew(job_id, execution_id):
                    log.warning("job_lock_lost")
                    running.cancel("the job lock was lost")
                    return
            except PyMongoError as error:
                log.warning("job_lock_renewal_failed", error=str(error))

    async def _progress(self, execution_id: ObjectId, stats: dict[str, Any], lines: list[str]) -> None:
        update: dict[str, Any] = {"$set": {"stats": stats}}
        if lines:
            update["$push"] = {"logTail": {"$each": lines, "$slice": -MAX_LINES}}
        await self._executions.update_one({"_id": execution_id}, update)

    async def _finish(
        self,
        execution: dict[str, Any],
        job: dict[str, Any],
        outcome: RunOutcome,
        reason: str | None,
        term: int,
    ) -> None:
        now = self._clock.now()
        started = execution["startedAt"]
        duration_ms = int((now - started).total_seconds() * 1000)
        fields = {
            **finished_fields(outcome.status, now, self._settings.execution_retention_days),
            "durationMs": duration_ms,
            "exitCode": outcome.exit_code,
            "pid": outcome.pid,
            "error": outcome.error,
            "reason": outcome.reason or reason,
            "stats": outcome.stats,
            # Whether the job's status and a retry were written for it: a new leader finishes what a
            # deposed one could not.
            "outcomeCommitted": False,
        }
        update: dict[str, Any] = {"$set": fields}
        if outcome.log_tail:
            # The runner's tail is capped in bytes too; the one flushed while it ran, in lines only.
            fields["logTail"] = outcome.log_tail
        await self._executions.update_one(
            {"_id": execution["_id"], "status": ExecutionStatus.RUNNING.value}, update
        )
        log.info(
            "execution_finished", status=outcome.status.value, duration_ms=duration_ms, error=outcome.error
        )
        # What outlives the run (the job's status, its cursors, a retry) is written only under a live term:
        # a deposed leader's late result must not overwrite the new leader's. The new leader commits it
        # later instead, cursors aside (see Scheduler.recover_abandoned).
        if not await self._leader_lock.is_current(term):
            log.warning("outcome_not_committed_term_lost", term=term)
            return
        await self.commit_outcome(
            {**execution, **fields}, job, error=outcome.error or fields["reason"], cursors=outcome.cursors
        )

    async def commit_outcome(
        self, execution: dict[str, Any], job: dict[str, Any], *, error: str | None, cursors: dict[str, Any]
    ) -> None:
        """Write a finished execution's consequences: the job's status fields (and cursors), and a retry if
        the job allows one; then mark the execution as committed."""
        status = ExecutionStatus(execution["status"])
        finished = execution["finishedAt"]
        await self._status.record_outcome(
            job["_id"],
            status=status,
            started_at=execution.get("startedAt"),
            finished_at=finished,
            duration_ms=execution.get("durationMs"),
            error=error,
            cursors=cursors,
        )
        await self.queue_retry_if_allowed(execution, job, status, finished)
        await self._executions.update_one({"_id": execution["_id"]}, {"$set": {"outcomeCommitted": True}})

    async def queue_retry_if_allowed(
        self, execution: dict[str, Any], job: dict[str, Any], status: ExecutionStatus, now: datetime
    ) -> dict[str, Any] | None:
        policy = job.get("retry") or {}
        attempt = execution["attempt"]
        if status not in RETRYABLE_STATUSES or attempt >= policy.get("maxAttempts", 1):
            return None
        delay = retry_delay(
            attempt,
            base=policy.get("backoffSeconds", 30),
            multiplier=policy.get("backoffMultiplier", 2),
            cap=policy.get("maxBackoffSeconds", 3600),
            rng=self._rng,
        )
        retry = new_execution_document(
            job=job,
            trigger=Trigger.RETRY,
            scheduled_for=execution["scheduledFor"],
            now=now,
            attempt=attempt + 1,
            run_after=now + timedelta(seconds=delay),
        )
        retry["retryOf"] = execution["_id"]
        try:
            await self._executions.insert_one(retry)
        except DuplicateKeyError:
            return None  # already queued by whoever finished this attempt first
        log.info("retry_queued", attempt=attempt + 1, delay_seconds=round(delay, 1))
        return retry

    async def _on_busy(self, execution: dict[str, Any], job: dict[str, Any]) -> None:
        """Another execution of the job holds its lock: apply the job's overlap policy."""
        if execution["trigger"] != Trigger.SCHEDULE.value:
            return  # manual runs and retries wait their turn
        policy = job.get("overlapPolicy", OverlapPolicy.SKIP.value)
        holder = await self._job_locks.holder(job["_id"])
        if policy == OverlapPolicy.SKIP.value:
            await self._finish_unstarted(
                execution["_id"],
                ExecutionStatus.SKIPPED,
                "overlap: the previous run was still going",
                blockedBy=holder["executionId"] if holder else None,
            )
            log.info("execution_skipped_overlap")
        elif policy == OverlapPolicy.CANCEL_RUNNING.value and holder is not None:
            await self._executions.update_one(
                {
                    "_id": holder["executionId"],
                    "status": ExecutionStatus.RUNNING.value,
                    "cancelRequestedAt": None,
                },
                {
                    "$set": {
                        "cancelRequestedAt": self._clock.now(),
                        "reason": "replaced by a newer scheduled run",
                    }
                },
            )
            self.cancel(holder["executionId"], "replaced by a newer scheduled run")
        # queue (and cancel_running): stays queued; the dispatcher tries again when the lock frees.

    async def _fail_unexpectedly(self, execution_id: ObjectId, error: Exception) -> None:
        """A bug or a database error in the launch itself: end the execution as failed rather than leave it
        queued (retried at every poll) or running (until recovery)."""
        try:
            await self._executions.update_one(
                {
                    "_id": execution_id,
                    "status": {"$in": [ExecutionStatus.QUEUED.value, ExecutionStatus.RUNNING.value]},
                    "$or": [{"workerId": None}, {"workerId": self._leader_lock.worker_id}],
                },
                {
                    "$set": {
                        **finished_fields(
                            ExecutionStatus.FAILED, self._clock.now(), self._settings.execution_retention_days
                        ),
                        "error": f"the worker failed to run it: {error!r}",
                    }
                },
            )
        except PyMongoError:
            pass  # the database is what failed; recovery ends a stuck run once its lock lapses

    async def _finish_unstarted(
        self, execution_id: ObjectId, status: ExecutionStatus, reason: str, **extra
    ) -> None:
        await self._executions.update_one(
            {"_id": execution_id, "status": ExecutionStatus.QUEUED.value},
            {
                "$set": {
                    **finished_fields(status, self._clock.now(), self._settings.execution_retention_days),
                    "reason": reason,
                    **extra,
                }
            },
        )
