"""Putting right what happened while no one (or a dead leader) acted: slots no leader fired, runs whose
worker died, and outcomes a dead worker could not commit. The leader alone does it."""

import asyncio
import bisect
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from bson import ObjectId

from models.clock import Clock
from models.collections import SYNC_JOBS
from models.execution import ExecutionStatus, Trigger, new_execution_document
from models.execution_store import ExecutionStore
from models.job_locks import JobLocks
from worker.firing import Firing, Missed
from worker.launcher import MISFIRE_GRACE_DEFAULT, Launcher, log_finished
from worker.leader_lock import LeaderLock
from worker.misfires import SLICE, missed_slots

log = structlog.get_logger("syncjobs.worker")


class Covered:
    """The slots of one job that have a record: fired ones, and missed ranges."""

    def __init__(self) -> None:
        self._slots: list[datetime] = []
        self._ranges: list[tuple[datetime, datetime]] = []

    def add(self, execution: dict[str, Any]) -> None:
        missed = execution.get("missed")
        if missed:
            # A range's record is scheduled for its first slot (the read projects only its last).
            self._ranges.append((execution["scheduledFor"], missed["lastSlot"]))
        else:
            self._slots.append(execution["scheduledFor"])

    def gaps(self, walked: list[datetime], start: int) -> list[tuple[int, int]]:
        """(first, last) indexes of each unbroken run of `walked[start:]` without a record. A search per
        record, not a look per slot: a day of minutely slots for each of a thousand jobs is walked at once."""
        taken: set[int] = set()
        for slot in self._slots:
            index = bisect.bisect_left(walked, slot, start)
            if index < len(walked) and walked[index] == slot:
                taken.add(index)
        for first, last in self._ranges:
            taken.update(range(bisect.bisect_left(walked, first, start), bisect.bisect_right(walked, last)))
        runs, run_start = [], start
        for index in sorted(taken):
            if index > run_start:
                runs.append((run_start, index - 1))
            run_start = max(run_start, index + 1)
        if run_start < len(walked):
            runs.append((run_start, len(walked) - 1))
        return runs


@dataclass
class MissedRange:
    """Slots `walked[first..last]` of a job, none of them recorded when catch-up read the records."""

    doc: dict[str, Any]
    walked: list[datetime]
    first: int
    last: int

    def record(self, store: ExecutionStore, now: datetime) -> dict[str, Any]:
        return store.missed_record(
            self.doc,
            count=self.last - self.first + 1,
            first=self.walked[self.first],
            last=self.walked[self.last],
            now=now,
        )


class Recovery:
    def __init__(
        self,
        db,
        *,
        clock: Clock,
        store: ExecutionStore,
        locks: JobLocks,
        launcher: Launcher,
        leader_lock: LeaderLock,
        queued,
        firing: Firing,
    ):
        self._jobs = db[SYNC_JOBS]
        self._clock = clock
        self._store = store
        self._locks = locks
        self._launcher = launcher
        self._leader_lock = leader_lock
        self._queued = queued  # wakes the dispatchers: the slots catch-up decided to run are queued
        self._firing = firing

    async def catch_up(self, missed: Missed, term: int, now: datetime) -> None:
        """Slots that came due while no leader fired them, up to `now` (when this term loaded): per job, the
        newest runs once if within grace; older ones are recorded as skipped executions, one per unbroken
        range, so every slot's fate can be read back. Fire times are walked once per (cron, zone) group, in
        slices that yield. Then the jobs' stored nextRunAt may move on (Firing.caught_up): until these records
        are written it stays at the first slot without one, where a next leader would start again.

        A slot that already has a record (the last leader wrote it and died before moving `nextRunAt`, or
        this term fired it before an earlier catch-up got this far) is not missed again. One still queued
        runs only if it is the newest and within grace."""
        recorded = await self._recorded_since(missed)
        groups: dict[tuple[str, str], Missed] = {}
        for doc, first_missed in missed:
            groups.setdefault((doc["schedule"]["cron"], doc["schedule"]["timezone"]), []).append(
                (doc, first_missed)
            )
        skipped: list[MissedRange] = []
        to_run: list[dict[str, Any]] = []
        stale_skipped: list[ObjectId] = []
        for (cron, zone), members in groups.items():
            walked = await missed_slots(cron, zone, min(first for _, first in members), now)
            for position, (doc, first_missed) in enumerate(members, start=1):
                covered, stale = recorded.get(doc["_id"], (Covered(), []))
                gaps = covered.gaps(walked, bisect.bisect_left(walked, first_missed))
                newest = walked[gaps[-1][1]] if gaps else None
                grace = timedelta(seconds=doc.get("misfireGraceSeconds", MISFIRE_GRACE_DEFAULT))
                newest_stale = max(stale, key=lambda execution: execution["scheduledFor"], default=None)
                if newest_stale is not None and (newest is None or newest < newest_stale["scheduledFor"]):
                    # The stale slot is the newest: it stays queued (the dispatcher starts it) if in grace.
                    if now - newest_stale["scheduledFor"] <= grace:
                        stale = [execution for execution in stale if execution is not newest_stale]
                elif newest is not None and now - newest <= grace:
                    # The newest slot runs, late; the ones before it are recorded as missed.
                    first, last = gaps.pop()
                    if first < last:
                        gaps.append((first, last - 1))
                    execution = new_execution_document(
                        job=doc, trigger=Trigger.SCHEDULE, scheduled_for=newest, now=now
                    )
                    execution["firedTerm"] = term
                    to_run.append(execution)
                stale_skipped.extend(execution["_id"] for execution in stale)
                skipped.extend(MissedRange(doc, walked, first, last) for first, last in gaps)
                if gaps:
                    count = sum(last - first + 1 for first, last in gaps)
                    log.info("slots_missed", job_id=str(doc["_id"]), count=count)
                if position % SLICE == 0:
                    await asyncio.sleep(0)
        await self._store.skip_missed(stale_skipped, now)
        # From one document up (worker.paced_writes): this follows a load, with nothing learned yet, and is
        # the biggest write a leader makes; with the database in this process a chunk of hundreds held the
        # loop (and so the fire loop's next slot) for seconds. Re-running this writes nothing twice: the
        # unique index on (job, slot, attempt) drops what landed already.
        pace = self._firing.pace
        pace.size = 1
        await self._write_ranges(skipped, now)
        for chunk in pace.chunks(to_run):
            with pace.timed(len(chunk)):
                await self._store.queue(chunk)
            self._queued()
            await asyncio.sleep(0)
        await self._firing.caught_up([doc["_id"] for doc, _ in missed], term)

    async def _write_ranges(self, ranges: list[MissedRange], now: datetime) -> None:
        """Write the missed ranges, paced. A range refused because its first slot has a record already (the
        range's key is that slot's, models.execution_store.missed_record) was either written before (this
        catch-up run again) or fired since this term read the records: by a leader paused past its lease that
        woke and inserted the slot it was firing. Then that slot has its record and the range goes on from
        the next one."""
        pace = self._firing.pace
        while ranges:
            refused: list[MissedRange] = []
            for chunk in pace.chunks(ranges):
                records = [missed.record(self._store, now) for missed in chunk]
                with pace.timed(len(chunk)):
                    written = {id(record) for record in await self._store.queue(records)}
                refused.extend(
                    m for m, record in zip(chunk, records, strict=True) if id(record) not in written
                )
                await asyncio.sleep(0)
            fired = await self._store.fired_slots([(m.doc["_id"], m.walked[m.first]) for m in refused])
            ranges = [
                MissedRange(m.doc, m.walked, m.first + 1, m.last)
                for m in refused
                if (m.doc["_id"], m.walked[m.first]) in fired and m.first < m.last
            ]

    async def _recorded_since(self, missed: Missed) -> dict[ObjectId, tuple["Covered", list[dict]]]:
        """Per job, the slots already recorded at or after its first missed one, and the executions of
        those slots still queued: one read for every job that missed slots."""
        docs = await self._store.scheduled_since({doc["_id"]: first for doc, first in missed})
        recorded: dict[ObjectId, tuple[Covered, list[dict]]] = {}
        for execution in docs:
            covered, stale = recorded.setdefault(execution["jobId"], (Covered(), []))
            covered.add(execution)
            if execution["status"] == ExecutionStatus.QUEUED.value:
                stale.append(execution)
        return recorded

    async def _lock_lost(self, now: datetime) -> list[dict[str, Any]]:
        """Running executions (not this worker's) that no longer hold their job's lock. A lapsed lock still
        naming the execution is deleted first, so a late renewal by its worker fails (and stops its run)
        instead of reviving it; a run is lock first, `running` second, end third, release last, so a
        running execution without a lock document lost it."""
        running = [
            execution
            for execution in await self._store.all_running()
            # ours, and going: its renewal is late, not its worker dead
            if execution["_id"] not in self._launcher.running
        ]
        if not running:
            return []
        locks = await self._locks.of_jobs(list({execution["jobId"] for execution in running}))
        lost = []
        for execution in running:
            lock = locks.get(execution["jobId"])
            if lock is not None and lock["executionId"] == execution["_id"]:
                if lock["expiresAt"] > now or not await self._locks.take_lapsed(
                    execution["jobId"], execution["_id"], now
                ):
                    continue  # live, or renewed just now
            lost.append(execution)
        return lost

    async def recover_abandoned(self, term: int) -> int:
        """Executions left `running` whose job lock has lapsed (or passed to another execution) and that this
        worker is not running: their worker died (or a run of ours failed to record its end). They become
        `abandoned` (and are retried if the job allows), so nothing stays running forever. Then the outcomes
        whose worker died before it could commit them. Returns how many executions were recovered."""
        now = self._clock.now()
        recovered = 0
        for execution in await self._lock_lost(now):
            if await self._store.abandon(execution["_id"], now):
                recovered += 1
                with structlog.contextvars.bound_contextvars(
                    workspace_id=execution["workspaceId"],
                    job_id=str(execution["jobId"]),
                    execution_id=str(execution["_id"]),
                ):
                    log_finished(ExecutionStatus.ABANDONED, worker=execution.get("workerId"))
        uncommitted = await self._store.uncommitted()
        # Committing another worker's outcome is only for a leader whose own lease is beyond doubt.
        if uncommitted and not await self._leader_lock.is_current(term):
            return recovered
        for execution in uncommitted:
            job = await self._jobs.find_one({"_id": execution["jobId"]})
            if job is None:
                await self._store.mark_committed(execution["_id"])
                continue
            # A dead worker's cursors are not known: the next incremental run reads those records again.
            await self._launcher.commit_outcome(execution, job, error=execution.get("error"), cursors={})
        return recovered
