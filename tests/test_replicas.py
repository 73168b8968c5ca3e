"""Replicas as real processes: `syncjobs api` and three `syncjobs worker` OS processes on one database of the
mongoeco wire-protocol server, killed and stopped with real signals. The tests run in order on one cluster
(starting four processes costs seconds on two cores); each leaves it with a live leader for the next.

The ticking job fires every 3 s: a seconds-field cron written to the database directly (the API accepts
minute crons only), so a takeover can be shown firing its next slot without waiting for a minute boundary.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bson import ObjectId
from pymongo import MongoClient

from models.collections import JOB_EXECUTIONS, JOB_LOCKS, SYNC_JOBS, WORKER_LOCKS
from models.sync_job import SyncJobSpec, new_job_document
from tests.conftest import SECRET_KEY
from tests.interpreters import script_python
from tests.processes_http import api_answers, call_api, wait_for
from tests.test_cli import free_port

pytestmark = pytest.mark.wire

LEASE = 2.0
RENEW = LEASE / 3
POLL = 0.5
WORKSPACE = "ws-replicas"
ADMIN_TOKEN = "sjt_replicas_" + uuid.uuid4().hex
QUICK_SOURCE = (
    "import sys, json; sys.stdin.readline(); print(json.dumps({'type': 'result', 'status': 'succeeded'}))"
)
# Sleeps long enough to be killed mid-run; killed by the test at the end if its worker could not.
SLOW_SOURCE = "import sys, time; sys.stdin.readline(); time.sleep(20)  # syncjobs-replica-test"
OWNER = re.compile(r"^[^:]+:(\d+):[0-9a-f]{8,}")


class Cluster:
    """The four processes, the database they share, and the API as a user calls it."""

    def __init__(self, url: str, tmp: Path):
        self.db_name = f"replicas_{uuid.uuid4().hex[:8]}"
        self.client = MongoClient(url, tz_aware=True)
        self.db = self.client[self.db_name]
        self.port = free_port()
        self.tmp = tmp
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("MONGODB_URL", "SYNCJOBS_SECRET_KEY")},
            "MONGODB_URL": url,
            "MONGODB_DB": self.db_name,
            "SYNCJOBS_SECRET_KEY": SECRET_KEY,
            "SYNCJOBS_BOOTSTRAP_TOKEN": ADMIN_TOKEN,
            "LOG_FORMAT": "json",
            "WORKER_LEASE_SECONDS": str(LEASE),
            "WORKER_CLOCK_SKEW_SECONDS": "0.5",
            "JOB_LOCK_TTL_SECONDS": "2",
            "POLL_INTERVAL_SECONDS": str(POLL),
            "RESYNC_INTERVAL_SECONDS": "3",
            "SHUTDOWN_GRACE_SECONDS": "1",
            "KILL_GRACE_SECONDS": "0.5",
            "MAX_CONCURRENT_RUNS": "2",
        }
        self.workers: dict[int, subprocess.Popen] = {}
        self.api: subprocess.Popen | None = None

    def spawn(self, *args: str, name: str) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        return subprocess.Popen(
            [sys.executable, "-m", "syncjobs", *args], stdout=log, stderr=subprocess.STDOUT, env=self.env
        )

    def start(self) -> None:
        self.api = self.spawn("api", "--port", str(self.port), name="api")
        for _ in range(3):
            self.add_worker()
        wait_for(self.api_answers, timeout=30, message="the API to answer")

    def add_worker(self, *, wait: bool = False) -> None:
        """Start one more worker process; with `wait`, until its first heartbeat (a replacement must be up
        before a test relies on it as a standby)."""
        process = self.spawn("worker", name=f"worker{len(self.workers)}")
        self.workers[process.pid] = process
        if wait:
            wait_for(
                lambda: self.db["workers"].find_one({"pid": process.pid}),
                timeout=30,
                message="the new worker's first heartbeat",
            )

    def api_answers(self) -> bool:
        return api_answers(self.port)

    def call(self, method: str, path: str, body: dict | None = None, *, under: str | None = None) -> dict:
        """`path` under the workspace, or under `under` (e.g. /api/admin) when given."""
        base = under if under is not None else f"/api/workspaces/{WORKSPACE}"
        return call_api(self.port, ADMIN_TOKEN, method, base + path, body)

    def lock(self) -> dict | None:
        return self.db[WORKER_LOCKS].find_one({"_id": "sync-worker"})

    def live_leader(self) -> dict | None:
        """The lock document while it names a live worker process and has not expired."""
        lock = self.lock()
        if lock is None or lock["expiresAt"] <= datetime.now(UTC):
            return None
        pid = int(OWNER.match(lock["owner"]).group(1))
        process = self.workers.get(pid)
        return lock if process is not None and process.poll() is None else None

    def leader_after(self, term: int, timeout: float) -> dict:
        return wait_for(
            lambda: (lock := self.live_leader()) and lock["term"] > term and lock,
            timeout=timeout,
            message=f"a leader with a term above {term}",
        )

    def events(self, name: str) -> list[dict]:
        found = []
        for path in self.tmp.glob("worker*.log"):
            for line in path.read_text().splitlines():
                if line.startswith("{") and json.loads(line).get("event") == name:
                    found.append(json.loads(line))
        return found

    def stop(self) -> None:
        for process in [*self.workers.values(), self.api]:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in [*self.workers.values(), self.api]:
            if process is not None:
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
        # A source whose worker was killed with -9 outlives it (issue 8, item 7): end ours here.
        for doc in self.db[JOB_EXECUTIONS].find({"pid": {"$ne": None}}, {"pid": 1}):
            try:
                if "syncjobs-replica-test" in Path(f"/proc/{doc['pid']}/cmdline").read_text():
                    os.kill(doc["pid"], signal.SIGKILL)
            except (OSError, ProcessLookupError):
                pass
        self.client.drop_database(self.db_name)
        self.client.close()


@pytest.fixture(scope="module")
def cluster(wire_server, tmp_path_factory) -> Iterator[Cluster]:
    cluster = Cluster(wire_server, tmp_path_factory.mktemp("replicas"))
    try:
        cluster.start()
        # Workspaces name connectors, never programs: the operator registers the two scripts first.
        for name, code in (("quick", QUICK_SOURCE), ("slow", SLOW_SOURCE)):
            connector = {"name": name, "executable": script_python(), "args": ["-c", code]}
            cluster.call("POST", "/connectors", connector, under="/api/admin")
        source = cluster.call(
            "POST", "/data-sources", {"name": "quick", "type": "command", "connector": "quick"}
        )
        slow = cluster.call("POST", "/data-sources", {"name": "slow", "type": "command", "connector": "slow"})
        destination = cluster.call(
            "POST", "/destinations", {"name": "d", "type": "mongodb", "database": cluster.db_name + "_dest"}
        )
        spec = SyncJobSpec.model_validate(
            {
                "name": "ticking",
                "dataSourceId": source["id"],
                "destinationDatabaseId": destination["id"],
                "schedule": {"cron": "* * * * *", "timezone": "UTC"},
                "syncMode": "incremental",
            }
        )
        ticking = new_job_document(WORKSPACE, spec, datetime.now(UTC))
        ticking["schedule"]["cron"] = "* * * * * */3"
        cluster.db[SYNC_JOBS].insert_one(ticking)
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
    assert int(OWNER.match(lock["owner"]).group(1)) in cluster.workers  # host:pid:uuid of a live worker
    assert lock["acquiredAt"] <= lock["heartbeatAt"] < lock["expiresAt"]
    assert (lock["expiresAt"] - lock["heartbeatAt"]).total_seconds() == pytest.approx(LEASE, abs=0.002)
    run = cluster.call("POST", f"/sync-jobs/{cluster.slow_id}/run")
    execution_id = ObjectId(run["executionId"])
    held = wait_for(
        lambda: cluster.db[JOB_LOCKS].find_one({"_id": cluster.slow_id}), timeout=10, message="the job lock"
    )
    # Whichever worker claimed it: every replica runs syncs, the leader included.
    assert held["executionId"] == execution_id and int(OWNER.match(held["owner"]).group(1)) in cluster.workers
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
    """Three more jobs on the ticking job's 3 s cron: four runs come due at once on workers of two run
    slots each, so the leader cannot take them all."""
    template = cluster.db[SYNC_JOBS].find_one({"_id": cluster.ticking_id})
    burst = []
    for n in range(3):
        job = {**template, "_id": ObjectId(), "name": f"burst{n}"}
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
    leader = cluster.workers[int(OWNER.match(lock["owner"]).group(1))]
    leader.send_signal(signal.SIGKILL)
    killed = datetime.now(UTC)
    leader.wait(5)
    runner_pid = int(OWNER.match(in_flight["workerId"]).group(1))
    if runner_pid != leader.pid:
        # The slow run went to a standby: kill that one too (a worker killed mid-run), and start a
        # replacement so that the fleet keeps a standby for the tests after this one.
        cluster.workers[runner_pid].send_signal(signal.SIGKILL)
        cluster.workers[runner_pid].wait(5)
        cluster.add_worker(wait=True)
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
        lambda: cluster.db[JOB_EXECUTIONS].find_one({"jobId": cluster.slow_id, "trigger": "retry"}),
        timeout=5,
        message="the abandoned run's retry",
    )
    assert retry["attempt"] == in_flight["attempt"] + 1


def test_sigterm_of_the_leader_hands_over_within_one_renewal(cluster, record_property):
    lock = cluster.leader_after(0, timeout=15)
    leader = cluster.workers[int(OWNER.match(lock["owner"]).group(1))]
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
            if int(OWNER.match(run["workerId"]).group(1)) not in alive
        ]

    wait_for(
        lambda: cluster.live_leader() and not left_by_the_dead(),
        timeout=10,
        message="no execution left running by a worker that is gone",
    )
