"""Replicas as real processes: `syncjobs api` and three `syncjobs worker` OS processes on one database of the
mongoeco wire-protocol server, killed and stopped with real signals. The tests run in order on one cluster
(starting four processes costs seconds on two cores); each leaves it with a live leader for the next.

The ticking job fires every 3 s: a seconds-field cron written to the database directly (the API accepts
minute crons only), so a takeover can be shown firing its next slot without waiting for a minute boundary.
"""

import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from bson import ObjectId

from models.collections import JOB_EXECUTIONS, JOB_LOCKS, SYNC_JOBS
from tests.replica_cluster import LEASE, POLL, RENEW, SOURCE_MARK, Cluster, pid_of, wait_for

pytestmark = pytest.mark.wire

QUICK_SOURCE = (
    "import sys, json; sys.stdin.readline(); print(json.dumps({'type': 'result', 'status': 'succeeded'}))"
)
# Outlasts a few polls: a burst of these keeps the first worker's slots taken while the others look.
STEADY_SOURCE = (
    "import sys, json, time; sys.stdin.readline(); time.sleep(1.5);"
    " print(json.dumps({'type': 'result', 'status': 'succeeded'}))"
)
# Sleeps long enough to be killed mid-run; killed by the test at the end if its worker could not.
SLOW_SOURCE = f"import sys, time; sys.stdin.readline(); time.sleep(20)  # {SOURCE_MARK}"


@pytest.fixture(scope="module")
def cluster(wire_server, tmp_path_factory) -> Iterator[Cluster]:
    cluster = Cluster(wire_server, tmp_path_factory.mktemp("replicas"))
    try:
        cluster.start()
        source = cluster.command_source("quick", QUICK_SOURCE)
        slow = cluster.command_source("slow", SLOW_SOURCE)
        cluster.steady_source_id = cluster.command_source("steady", STEADY_SOURCE)["id"]
        destination = cluster.call(
            "POST", "/destinations", {"name": "d", "type": "mongodb", "database": cluster.db_name + "_dest"}
        )
        ticking = cluster.insert_job(
            {
                "name": "ticking",
                "dataSourceId": source["id"],
                "destinationDatabaseId": destination["id"],
                "syncMode": "incremental",
            },
            cron="* * * * * */3",
        )
        cluster.ticking_id = ticking["_id"]
        cluster.slow_id = ObjectId(
            cluster.call(
                "POST",
                "/sync-jobs",
                {
                    "name": "slow",
                    "dataSourceId": slow["id"],
                    "destinationDatabaseId": destination["id"],
                    "schedule": {"cron": "0 0 1 1 *", "timezone": "UTC"},
                    "syncMode": "incremental",
                    "retry": {"maxAttempts": 2, "backoffSeconds": 1},
                },
            )["id"]
        )
        yield cluster
    finally:
        cluster.stop()


def test_exactly_one_of_three_worker_processes_leads(cluster):
    lock = cluster.leader_after(0, timeout=15)
    owners = set()
    for _ in range(10):  # two leases' worth of looks: the lease stays with one worker
        owners.add(cluster.live_leader()["owner"])
        time.sleep(LEASE / 5)
    assert owners == {lock["owner"]}
    acquired = cluster.events("lock_acquired")
    assert len(acquired) == 1 and acquired[0]["worker_id"] == lock["owner"]


def test_the_lock_documents_read_as_the_readme_says(cluster):
    lock = cluster.leader_after(0, timeout=15)
    assert set(lock) == {"_id", "owner", "term", "acquiredAt", "heartbeatAt", "expiresAt"}
    assert pid_of(lock["owner"]) in cluster.workers  # host:pid:uuid of a live worker
    assert lock["acquiredAt"] <= lock["heartbeatAt"] < lock["expiresAt"]
    assert (lock["expiresAt"] - lock["heartbeatAt"]).total_seconds() == pytest.approx(LEASE, abs=0.002)
    run = cluster.call("POST", f"/sync-jobs/{cluster.slow_id}/run")
    execution_id = ObjectId(run["executionId"])
    held = wait_for(
        lambda: cluster.db[JOB_LOCKS].find_one({"_id": cluster.slow_id}), timeout=10, message="the job lock"
    )
    # Whichever worker claimed it: every replica runs syncs, the leader included.
    assert held["executionId"] == execution_id and pid_of(held["owner"]) in cluster.workers
    assert set(held) == {"_id", "owner", "executionId", "acquiredAt", "heartbeatAt", "expiresAt"}
    assert held["acquiredAt"] <= held["heartbeatAt"] < held["expiresAt"]
    assert held["expiresAt"] > datetime.now(UTC)
    running = wait_for(
        lambda: cluster.db[JOB_EXECUTIONS].find_one({"_id": execution_id, "pid": {"$ne": None}}),
        timeout=5,
        message="the running execution to record its source's pid",
    )
    assert running["status"] == "running" and running["workerId"] == held["owner"] and running["pid"] > 0


def test_a_patch_through_the_api_reaches_the_leaders_schedule_within_the_poll_interval(
    cluster, record_property
):
    job = cluster.call("GET", f"/sync-jobs/{cluster.slow_id}")
    sent = time.monotonic()
    patched = cluster.call("PATCH", f"/sync-jobs/{cluster.slow_id}", {"schedule": {"cron": "0 0 2 1 *"}})
    assert patched["version"] == job["version"] + 1
    wait_for(
        lambda: (
            cluster.db[SYNC_JOBS].find_one({"_id": cluster.slow_id})["scheduleAppliedVersion"]
            == patched["version"]
        ),
        timeout=POLL + 1,
        message="scheduleAppliedVersion to reach the new version",
    )
    stored = cluster.db[SYNC_JOBS].find_one({"_id": cluster.slow_id})
    assert stored["nextRunAt"] == datetime(datetime.now(UTC).year + 1, 1, 2, tzinfo=UTC)
    record_property(
        "figure", f"PATCH applied {time.monotonic() - sent:.2f} s after it was sent (poll {POLL:g} s)"
    )


def test_runs_land_on_every_worker_with_no_duplicates_and_no_overlaps(cluster, record_property):
    """Three more jobs on the ticking job's 3 s cron, of a source that takes 1.5 s: four runs come due at
    once on workers of two run slots each, so the leader cannot take them all, and its slots stay taken
    while the others poll. (With sources of a few milliseconds the leader rightly runs all four itself
    before the next poll of any other worker: there are no change streams on this server.)"""
    template = cluster.db[SYNC_JOBS].find_one({"_id": cluster.ticking_id})
    burst = []
    for n in range(3):
        job = {**template, "_id": ObjectId(), "name": f"burst{n}", "dataSourceId": cluster.steady_source_id}
        for field in ("nextRunAt", "scheduleAppliedVersion", "scheduleAppliedAt", "fenceTerm"):
            job.pop(field, None)
        burst.append(job)
    started = datetime.now(UTC)
    cluster.db[SYNC_JOBS].insert_many(burst)
    burst_ids = [job["_id"] for job in burst]
    try:
        wait_for(
            lambda: (
                len(
                    cluster.db[JOB_EXECUTIONS].distinct(
                        "workerId", {"jobId": {"$in": burst_ids}, "status": "succeeded"}
                    )
                )
                >= 2
            ),
            timeout=20,
            message="the burst's runs to land on more than one worker",
        )
    finally:
        cluster.db[SYNC_JOBS].delete_many({"_id": {"$in": burst_ids}})
    runs = list(
        cluster.db[JOB_EXECUTIONS].find(
            {"jobId": {"$in": [cluster.ticking_id, *burst_ids]}, "startedAt": {"$gte": started}}
        )
    )
    workers = {run["workerId"] for run in runs}
    record_property("figure", f"{len(runs)} runs of 4 jobs spread over {len(workers)} worker processes")
    slots = [(run["jobId"], run["scheduledFor"], run["attempt"]) for run in runs]
    assert len(slots) == len(set(slots))
    by_job: dict = {}
    for run in sorted(runs, key=lambda run: run["startedAt"]):
        by_job.setdefault(run["jobId"], []).append(run)
    for job_runs in by_job.values():
        for earlier, later in zip(job_runs, job_runs[1:], strict=False):
            assert earlier["finishedAt"] is None or earlier["finishedAt"] <= later["startedAt"]


def test_kill_9_of_the_leader_hands_over_within_the_lease_and_its_run_is_abandoned_and_retried(
    cluster, record_property
):
    lock = cluster.leader_after(0, timeout=15)
    in_flight = cluster.db[JOB_EXECUTIONS].find_one({"jobId": cluster.slow_id, "status": "running"})
    assert in_flight is not None
    leader = cluster.workers[pid_of(lock["owner"])]
    leader.send_signal(signal.SIGKILL)
    killed = datetime.now(UTC)
    leader.wait(5)
    runner_pid = pid_of(in_flight["workerId"])
    if runner_pid != leader.pid:
        # The slow run went to a standby: kill that one too (a worker killed mid-run), and start a
        # replacement, up before the next test relies on it as a standby.
        cluster.workers[runner_pid].send_signal(signal.SIGKILL)
        cluster.workers[runner_pid].wait(5)
        cluster.start_worker(wait=True)
    successor = cluster.leader_after(lock["term"], timeout=LEASE + 5)
    takeover = (successor["acquiredAt"] - killed).total_seconds()
    record_property("figure", f"kill -9: a standby led {takeover:.2f} s later (lease {LEASE:g} s)")
    assert successor["owner"] != lock["owner"] and takeover <= LEASE + 1
    fired = wait_for(
        lambda: cluster.db[JOB_EXECUTIONS].find_one(
            {"jobId": cluster.ticking_id, "firedTerm": successor["term"], "scheduledFor": {"$gt": killed}}
        ),
        timeout=5,
        message="the new leader to fire the ticking job's next slot",
    )
    assert fired["trigger"] == "schedule"
    abandoned = wait_for(
        lambda: (
            (doc := cluster.db[JOB_EXECUTIONS].find_one({"_id": in_flight["_id"]}))["status"] == "abandoned"
            and doc
        ),
        timeout=10,
        message="the killed leader's run to be abandoned",
    )
    assert abandoned["finishedAt"] > killed
    retry = wait_for(
        lambda: cluster.db[JOB_EXECUTIONS].find_one({"retryOf": in_flight["_id"]}),
        timeout=5,
        message="the abandoned run's retry",
    )
    assert retry["attempt"] == in_flight["attempt"] + 1


def test_sigterm_of_the_leader_hands_over_within_one_renewal(cluster, record_property):
    lock = cluster.leader_after(0, timeout=15)
    leader = cluster.workers[pid_of(lock["owner"])]
    leader.send_signal(signal.SIGTERM)
    assert leader.wait(10) == 0
    successor = cluster.leader_after(lock["term"], timeout=RENEW + 5)
    (released,) = [e for e in cluster.events("lock_released") if e["worker_id"] == lock["owner"]]
    assert released["term"] == lock["term"] and successor["owner"] != lock["owner"]
    handover = (successor["acquiredAt"] - datetime.fromisoformat(released["timestamp"])).total_seconds()
    record_property(
        "figure", f"SIGTERM: next leader {handover:.2f} s after the release (renewal {RENEW:.2f} s)"
    )
    assert handover <= RENEW + 0.5


def test_no_job_slot_and_attempt_ran_twice_and_nothing_is_left_running(cluster):
    leader = cluster.leader_after(0, timeout=15)
    # The last leader fires too, so the slots counted span every term of this module.
    wait_for(
        lambda: cluster.db[JOB_EXECUTIONS].find_one(
            {"jobId": cluster.ticking_id, "firedTerm": leader["term"]}
        ),
        timeout=5,
        message="the last leader to fire the ticking job",
    )
    terms = cluster.db[JOB_EXECUTIONS].distinct(
        "firedTerm", {"jobId": cluster.ticking_id, "trigger": "schedule"}
    )
    assert len(terms) >= 2
    repeats = list(
        cluster.db[JOB_EXECUTIONS].aggregate(
            [
                {
                    "$group": {
                        "_id": {"job": "$jobId", "slot": "$scheduledFor", "attempt": "$attempt"},
                        "n": {"$sum": 1},
                    }
                },
                {"$match": {"n": {"$gt": 1}}},
            ]
        )
    )
    assert repeats == []

    # A run of a dead worker ends `abandoned` once its job lock lapses and the leader's recovery looks.
    def left_by_the_dead() -> list[dict]:
        alive = {pid for pid, process in cluster.workers.items() if process.poll() is None}
        return [
            run
            for run in cluster.db[JOB_EXECUTIONS].find({"status": "running"}, {"workerId": 1})
            if pid_of(run["workerId"]) not in alive
        ]

    wait_for(
        lambda: cluster.live_leader() and not left_by_the_dead(),
        timeout=10,
        message="no execution left running by a worker that is gone",
    )
