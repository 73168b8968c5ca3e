"""Finished executions, each looked at once across all workers: counted in the metrics, and turned into
webhook deliveries (execution.*, job.failing, job.recovered, job.duration_anomaly).

No hook in the launcher: the notifier finds executions with `finishedAt` set and `notifiedAt` unset (index
`notify_pending`), waits until a run's outcome is committed (so the history it reads is complete), queues
the deliveries (one per webhook, event and execution, by a unique index) and then marks the execution
notified. A worker dying in between leaves it unmarked; the next pass queues nothing twice."""

from datetime import datetime, timedelta
from typing import Any

import structlog
from bson import ObjectId
from pymongo.errors import BulkWriteError

from models.clock import Clock
from models.collections import JOB_EXECUTIONS, SYNC_JOBS, WEBHOOK_DELIVERIES, WEBHOOKS
from models.execution import ExecutionStatus, Trigger
from models.settings import Settings
from models.webhook import DeliveryStatus
from worker import metrics
from worker.webhook_payloads import event_payload

log = structlog.get_logger("syncjobs.worker")

BATCH = 200
# Executions that finished longer ago than this before the notifier first saw them (a worker down for
# days, the first start after an upgrade) are marked without events: an alert that late helps no one.
LOOKBACK = timedelta(days=1)
FAILING = (ExecutionStatus.FAILED.value, ExecutionStatus.TIMED_OUT.value, ExecutionStatus.ABANDONED.value)
# A cancel or a skip is what somebody wanted: it neither extends nor ends a failure streak.
OUTCOMES = (ExecutionStatus.SUCCEEDED.value, *FAILING)
ANOMALY_FACTOR = 3
ANOMALY_SAMPLE = 50
ANOMALY_MIN_SAMPLE = 5
MAX_STREAK_LOOKED_AT = 1001


def nearest_rank(sorted_values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of an ascending list."""
    index = max(0, min(len(sorted_values) - 1, -(-len(sorted_values) * fraction // 1) - 1))
    return sorted_values[int(index)]


def observe(execution: dict[str, Any]) -> None:
    metrics.EXECUTIONS.labels(status=execution["status"]).inc()
    if execution.get("durationMs") is not None:
        metrics.EXECUTION_DURATION.observe(execution["durationMs"] / 1000)
    if execution.get("trigger") == Trigger.SCHEDULE.value and execution.get("startedAt"):
        lag = (execution["startedAt"] - execution["scheduledFor"]).total_seconds()
        metrics.FIRE_LAG.observe(max(lag, 0.0))


class Notifier:
    def __init__(self, db, *, clock: Clock, settings: Settings):
        self._executions = db[JOB_EXECUTIONS]
        self._jobs = db[SYNC_JOBS]
        self._webhooks = db[WEBHOOKS]
        self._deliveries = db[WEBHOOK_DELIVERIES]
        self._clock = clock
        self._retention_days = settings.execution_retention_days

    async def run_once(self) -> int:
        """Look at every finished, committed, not yet notified execution; returns how many were marked."""
        now = self._clock.now()
        pending = (
            await self._executions.find(
                {
                    "notifiedAt": None,
                    "finishedAt": {"$gte": now - LOOKBACK},
                    "outcomeCommitted": {"$ne": False},
                }
            )
            .sort([("finishedAt", 1), ("_id", 1)])
            .limit(BATCH)
            .to_list(None)
        )
        webhooks: dict[str, list[dict[str, Any]]] = {}
        marked = 0
        for execution in pending:
            workspace_id = execution["workspaceId"]
            if workspace_id not in webhooks:
                webhooks[workspace_id] = await self._webhooks.find(
                    {"workspaceId": workspace_id, "enabled": True}
                ).to_list(None)
            if webhooks[workspace_id]:
                await self._queue(execution, webhooks[workspace_id], now)
            claimed = await self._executions.update_one(
                {"_id": execution["_id"], "notifiedAt": None}, {"$set": {"notifiedAt": now}}
            )
            if claimed.modified_count:
                marked += 1
                observe(execution)
        # Old ones are marked in one write, so they leave the index's pending range for good.
        await self._executions.update_many(
            {"notifiedAt": None, "finishedAt": {"$lt": now - LOOKBACK}}, {"$set": {"notifiedAt": now}}
        )
        return marked

    async def events_of(
        self, execution: dict[str, Any], webhook: dict[str, Any]
    ) -> list[tuple[str, dict[str, Any]]]:
        """(event, details) this execution means for this webhook, before its subscription filter."""
        status = execution["status"]
        events: list[tuple[str, dict[str, Any]]] = []
        if status not in OUTCOMES:
            return events
        events.append((f"execution.{status}", {}))
        threshold = webhook.get("failureThreshold", 3)
        streak, previous = await self._streaks(execution, threshold)
        if status in FAILING and streak == threshold:
            events.append(("job.failing", {"consecutiveFailures": streak, "threshold": threshold}))
        if status == ExecutionStatus.SUCCEEDED.value:
            if previous >= threshold:
                events.append(("job.recovered", {"failedRunsBefore": previous, "threshold": threshold}))
            anomaly = await self._duration_anomaly(execution)
            if anomaly is not None:
                events.append(("job.duration_anomaly", anomaly))
        return events

    async def _streaks(self, execution: dict[str, Any], threshold: int) -> tuple[int, int]:
        """(failed runs in a row ending with this one, failed runs in a row right before it)."""
        history = (
            await self._executions.find(
                {
                    "jobId": execution["jobId"],
                    "status": {"$in": list(OUTCOMES)},
                    "queuedAt": {"$lte": execution["queuedAt"]},
                    "_id": {"$ne": execution["_id"]},
                },
                {"status": 1},
            )
            .sort([("queuedAt", -1), ("_id", -1)])
            .limit(min(threshold + 1, MAX_STREAK_LOOKED_AT))
            .to_list(None)
        )
        before = 0
        for doc in history:
            if doc["status"] not in FAILING:
                break
            before += 1
        current = before + 1 if execution["status"] in FAILING else 0
        return current, before

    async def _duration_anomaly(self, execution: dict[str, Any]) -> dict[str, Any] | None:
        """Over 3x the p95 of the job's last 50 successful runs before this one (and at least 5 of them)."""
        if execution.get("durationMs") is None:
            return None
        earlier = (
            await self._executions.find(
                {
                    "jobId": execution["jobId"],
                    "status": ExecutionStatus.SUCCEEDED.value,
                    "queuedAt": {"$lte": execution["queuedAt"]},
                    "_id": {"$ne": execution["_id"]},
                    "durationMs": {"$ne": None},
                },
                {"durationMs": 1},
            )
            .sort([("queuedAt", -1), ("_id", -1)])
            .limit(ANOMALY_SAMPLE)
            .to_list(None)
        )
        if len(earlier) < ANOMALY_MIN_SAMPLE:
            return None
        p95 = nearest_rank(sorted(doc["durationMs"] for doc in earlier), 0.95)
        if execution["durationMs"] <= ANOMALY_FACTOR * p95:
            return None
        return {"p95Ms": p95, "factor": ANOMALY_FACTOR, "sampleSize": len(earlier)}

    async def _queue(self, execution: dict[str, Any], webhooks: list[dict[str, Any]], now: datetime) -> None:
        job = await self._jobs.find_one({"_id": execution["jobId"]}, {"name": 1})
        deliveries = []
        for webhook in webhooks:
            for event, details in await self.events_of(execution, webhook):
                if event not in webhook.get("events", ()):
                    continue
                deliveries.append(
                    {
                        "_id": ObjectId(),
                        "webhookId": webhook["_id"],
                        "workspaceId": execution["workspaceId"],
                        "event": event,
                        "executionId": execution["_id"],
                        "jobId": execution["jobId"],
                        "payload": event_payload(event, execution, job, details),
                        "status": DeliveryStatus.PENDING.value,
                        "attempts": 0,
                        "createdAt": now,
                        "nextAttemptAt": now,
                        "lastAttemptAt": None,
                        "lastStatusCode": None,
                        "lastError": None,
                        "deliveredAt": None,
                        "expireAt": now + timedelta(days=self._retention_days),
                    }
                )
        if not deliveries:
            return
        try:
            await self._deliveries.insert_many(deliveries, ordered=False)
        except BulkWriteError as error:
            # Another worker queued some of them first (unique webhook, execution, event): not an error.
            if any(item.get("code") != 11000 for item in error.details.get("writeErrors", [])):
                raise
        log.info("webhook_events_queued", execution_id=str(execution["_id"]), count=len(deliveries))
