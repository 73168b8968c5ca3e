"""The leader lock, as operators see it in db.worker_locks: a lease, valid while `expiresAt` is in the
future, judged by the query against the clock, never by whether a TTL monitor has deleted the document.

A job's lock is not a document of its own: it is the job's one `running` execution (a unique partial
index), leased through that execution's `lockExpiresAt`.
"""

LEADER_LOCK_ID = "sync-worker"
