"""The worker's Prometheus metrics (prometheus-client, default registry), served on --status-port.

Execution counts, durations and fire lag are observed by the notifier (worker/notifier.py), which sees each
finished execution exactly once across all workers, so summing the replicas' series counts each run once."""

from prometheus_client import Counter, Gauge, Histogram

EXECUTIONS = Counter("syncjobs_executions", "Finished executions, by final status", ["status"])
EXECUTION_DURATION = Histogram(
    "syncjobs_execution_duration_seconds",
    "How long runs took, start to finish",
    buckets=(0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200),
)
FIRE_LAG = Histogram(
    "syncjobs_fire_lag_seconds",
    "Start of a scheduled run minus its slot",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
LEADER = Gauge("syncjobs_worker_leader", "1 while this worker holds the scheduler lease")
TERM = Gauge("syncjobs_leader_term", "The lease term this worker holds (0 while standing by)")
LEASE_RENEWAL_FAILURES = Counter(
    "syncjobs_lease_renewal_failures", "Lease renewals that failed (database error or timeout)"
)
QUEUED = Gauge("syncjobs_executions_queued", "Executions waiting to run, as of this worker's last heartbeat")
RUNNING = Gauge("syncjobs_executions_running_here", "Executions this worker is running")
WEBHOOK_DELIVERIES = Counter(
    "syncjobs_webhook_deliveries", "Webhook delivery attempts, by outcome", ["outcome"]
)
