"""Collection names and the indexes each needs, created idempotently at start-up."""

from pymongo import ASCENDING, DESCENDING, IndexModel

SYNC_JOBS = "syncjobs"
JOB_EXECUTIONS = "job_executions"
WORKER_LOCKS = "worker_locks"
# One document per job while one of its executions holds it (models/job_locks.py); _id is the job's id.
JOB_LOCKS = "job_execution_locks"
API_TOKENS = "api_tokens"
DATA_SOURCES = "data_sources"
DESTINATIONS = "destinations"
# Registered through the admin routes; _id is the connector's name.
CONNECTORS = "connectors"
WORKERS = "workers"
SCHEDULER_CONTROL = "scheduler_control"
WEBHOOKS = "webhooks"
WEBHOOK_DELIVERIES = "webhook_deliveries"
# One counter per watched collection that every user edit raises (models/job_changes.py); _id names it.
CHANGE_MARKS = "change_marks"

INDEXES: dict[str, list[IndexModel]] = {
    SYNC_JOBS: [
        IndexModel([("workspaceId", ASCENDING), ("_id", ASCENDING)], name="workspace_order"),
        # The worker's polling fallback reads jobs changed since its last look.
        IndexModel([("updatedAt", ASCENDING)], name="updated_at"),
        # The admin view's next fire times across every workspace.
        IndexModel([("enabled", ASCENDING), ("nextRunAt", ASCENDING)], name="next_fire"),
    ],
    JOB_EXECUTIONS: [
        # A second execution of the same slot and attempt is impossible, whoever fires it.
        IndexModel(
            [("jobId", ASCENDING), ("scheduledFor", ASCENDING), ("attempt", ASCENDING)],
            unique=True,
            name="one_per_slot_attempt",
        ),
        # At most one manual run waits per job, even when two requests race. (Its key differs from
        # one_running_per_job's: servers refuse two indexes of one key pattern differing only in the filter.)
        IndexModel(
            [("jobId", ASCENDING), ("trigger", ASCENDING)],
            unique=True,
            partialFilterExpression={"trigger": "manual", "status": "queued"},
            name="one_queued_manual_run",
        ),
        IndexModel([("jobId", ASCENDING), ("queuedAt", DESCENDING), ("_id", DESCENDING)], name="job_history"),
        # A second guard behind the job lock (job_execution_locks): at most one running execution per job
        # even if a lock were lost. It costs no command: the claim's update to `running` checks it.
        IndexModel(
            [("jobId", ASCENDING)],
            unique=True,
            partialFilterExpression={"status": "running"},
            name="one_running_per_job",
        ),
        IndexModel([("status", ASCENDING), ("runAfter", ASCENDING)], name="dispatch"),
        # The leader's recovery: finished runs whose consequences are not written yet (their worker died).
        IndexModel(
            [("outcomeCommitted", ASCENDING)],
            partialFilterExpression={"outcomeCommitted": False},
            name="uncommitted",
        ),
        # A workspace's runs across its jobs, newest first (GET /api/workspaces/{ws}/executions).
        IndexModel(
            [("workspaceId", ASCENDING), ("queuedAt", DESCENDING), ("_id", DESCENDING)],
            name="workspace_history",
        ),
        # Retention: finished executions carry expireAt, so the retention can change without an index rebuild.
        IndexModel([("expireAt", ASCENDING)], expireAfterSeconds=0, name="retention"),
        # Statistics over a period, per workspace (per job, job_history serves).
        IndexModel([("workspaceId", ASCENDING), ("queuedAt", ASCENDING)], name="workspace_period"),
        # Finished executions the notifier has not looked at yet (notifiedAt missing reads as null).
        IndexModel([("notifiedAt", ASCENDING), ("finishedAt", ASCENDING)], name="notify_pending"),
    ],
    JOB_LOCKS: [
        # Cleanup only, an hour after a lease lapsed (a worker that died holding it): a claim compares
        # expiresAt with the clock itself, and a released lock is deleted at once. Lookups go by _id.
        IndexModel([("expiresAt", ASCENDING)], expireAfterSeconds=3600, name="cleanup"),
    ],
    # worker_locks has no TTL index on purpose: deleting the leader document would restart the fencing
    # term at 1, and an older leader's term must stay below every newer one.
    API_TOKENS: [
        IndexModel([("tokenHash", ASCENDING)], unique=True, name="token_hash"),
        IndexModel([("workspaceId", ASCENDING), ("_id", ASCENDING)], name="workspace_order"),
    ],
    DATA_SOURCES: [IndexModel([("workspaceId", ASCENDING), ("_id", ASCENDING)], name="workspace_order")],
    DESTINATIONS: [IndexModel([("workspaceId", ASCENDING), ("_id", ASCENDING)], name="workspace_order")],
    # Cleanup only: readers judge a heartbeat by heartbeatAt against their own clock.
    WORKERS: [IndexModel([("expireAt", ASCENDING)], expireAfterSeconds=0, name="cleanup")],
    WEBHOOKS: [IndexModel([("workspaceId", ASCENDING), ("_id", ASCENDING)], name="workspace_order")],
    WEBHOOK_DELIVERIES: [
        # One delivery per webhook, event and execution, whichever worker notices it first.
        IndexModel(
            [("webhookId", ASCENDING), ("executionId", ASCENDING), ("event", ASCENDING)],
            unique=True,
            name="one_per_event",
        ),
        IndexModel([("status", ASCENDING), ("nextAttemptAt", ASCENDING)], name="due"),
        IndexModel([("webhookId", ASCENDING), ("createdAt", DESCENDING), ("_id", DESCENDING)], name="log"),
        IndexModel([("expireAt", ASCENDING)], expireAfterSeconds=0, name="retention"),
    ],
}


async def ensure_indexes(db) -> None:
    """Create every index; a no-op for those that exist already."""
    for name, models in INDEXES.items():
        for model in models:
            # One create_index per index, not create_indexes: mongomock drops the options
            # (partialFilterExpression, name) of IndexModels passed to create_indexes.
            options = dict(model.document)
            keys = list(options.pop("key").items())
            await db[name].create_index(keys, **options)
