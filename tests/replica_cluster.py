"""Replicas as real processes: `syncjobs api` and `syncjobs worker` OS processes on one database of the
mongoeco wire-protocol server, with a 2 s lease, for the tests that kill and stop them with real signals
(tests/test_replicas.py, tests/test_chaos_processes.py)."""

import json
import os
import re
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from pymongo import MongoClient

from models.collections import JOB_EXECUTIONS, SYNC_JOBS, WORKER_LOCKS, WORKERS
from models.sync_job import SyncJobSpec, new_job_document
from tests.conftest import SECRET_KEY
from tests.interpreters import script_python
from tests.processes_http import api_answers, call_api, wait_for
from tests.test_cli import free_port

LEASE = 2.0
RENEW = LEASE / 3
POLL = 0.5
WORKSPACE = "ws-replicas"
# Put in a source's code: sources a worker killed with -9 left behind are found by it and ended at the end.
SOURCE_MARK = "syncjobs-replica-test"
OWNER = re.compile(r"^[^:]+:(\d+):[0-9a-f]{8,}")


def pid_of(owner: str) -> int:
    """The pid in an owner id `host:pid:uuid`."""
    return int(OWNER.match(owner).group(1))


class Cluster:
    """The processes, the database they share, and the API as a user calls it."""

    def __init__(self, url: str, tmp: Path):
        self.db_name = f"replicas_{uuid.uuid4().hex[:8]}"
        self.client = MongoClient(url, tz_aware=True)
        self.db = self.client[self.db_name]
        self.port = free_port()
        self.tmp = tmp
        self.admin_token = "sjt_replicas_" + uuid.uuid4().hex
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("MONGODB_URL", "SYNCJOBS_SECRET_KEY")},
            "MONGODB_URL": url,
            "MONGODB_DB": self.db_name,
            "SYNCJOBS_SECRET_KEY": SECRET_KEY,
            "SYNCJOBS_BOOTSTRAP_TOKEN": self.admin_token,
            "LOG_FORMAT": "json",
            "WORKER_LEASE_SECONDS": str(LEASE),
            "WORKER_CLOCK_SKEW_SECONDS": "0.5",
            "JOB_LOCK_TTL_SECONDS": "2",
            "POLL_INTERVAL_SECONDS": str(POLL),
            "RESYNC_INTERVAL_SECONDS": "3",
            "SHUTDOWN_GRACE_SECONDS": "1",
            "KILL_GRACE_SECONDS": "0.5",
            # Two run slots each: a few runs due at once are more than the leader takes, so they spread.
            "MAX_CONCURRENT_RUNS": "2",
        }
        self.workers: dict[int, subprocess.Popen] = {}
        self.api: subprocess.Popen | None = None
        self._spawned = 0

    def spawn(self, *args: str, name: str) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        return subprocess.Popen(
            [sys.executable, "-m", "syncjobs", *args], stdout=log, stderr=subprocess.STDOUT, env=self.env
        )

    def start_worker(self, *, wait: bool = False) -> subprocess.Popen:
        """One more worker process; with `wait`, until its first heartbeat (a replacement must be up before a
        test relies on it as a standby)."""
        process = self.spawn("worker", name=f"worker{self._spawned}")
        self._spawned += 1
        self.workers[process.pid] = process
        if wait:
            wait_for(
                lambda: self.db[WORKERS].find_one({"pid": process.pid}),
                timeout=30,
                message="the new worker's first heartbeat",
            )
        return process

    def start(self, workers: int = 3) -> None:
        self.api = self.spawn("api", "--port", str(self.port), name="api")
        for _ in range(workers):
            self.start_worker()
        wait_for(self.api_answers, timeout=30, message="the API to answer")

    def api_answers(self) -> bool:
        return api_answers(self.port)

    def call(self, method: str, path: str, body: dict | None = None, *, under: str | None = None) -> dict:
        """`path` under the workspace, or under `under` (e.g. /api/admin) when given."""
        base = under if under is not None else f"/api/workspaces/{WORKSPACE}"
        return call_api(self.port, self.admin_token, method, base + path, body)

    def command_source(self, name: str, code: str, *args: str) -> dict:
        """A command data source running `python -c code args...`: the operator registers the program as a
        connector first (workspaces name connectors, never programs)."""
        connector = {"name": name, "executable": script_python(), "args": ["-c", code, *args]}
        self.call("POST", "/connectors", connector, under="/api/admin")
        return self.call("POST", "/data-sources", {"name": name, "type": "command", "connector": name})

    def insert_job(self, body: dict, *, cron: str) -> dict:
        """A job written to the database directly, so that it can carry a seconds-field cron (`*/3` seconds):
        the API accepts minute crons only, and a test cannot wait for minute boundaries."""
        spec = SyncJobSpec.model_validate({**body, "schedule": {"cron": "* * * * *", "timezone": "UTC"}})
        job = new_job_document(WORKSPACE, spec, datetime.now(UTC))
        job["schedule"]["cron"] = cron
        self.db[SYNC_JOBS].insert_one(job)
        return job

    def lock(self) -> dict | None:
        return self.db[WORKER_LOCKS].find_one({"_id": "sync-worker"})

    def live_leader(self) -> dict | None:
        """The lock document while it names a live worker process and has not expired."""
        lock = self.lock()
        if lock is None or lock["expiresAt"] <= datetime.now(UTC):
            return None
        process = self.workers.get(pid_of(lock["owner"]))
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

    def stop_workers(self) -> None:
        """SIGTERM (after SIGCONT, for a stopped one) to every worker, and wait for each to exit."""
        self._stop([*self.workers.values()])

    def _stop(self, processes: list[subprocess.Popen | None]) -> None:
        for process in processes:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.send_signal(signal.SIGTERM)
        for process in processes:
            if process is not None:
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def stop(self) -> None:
        self._stop([*self.workers.values(), self.api])
        # A source whose worker was killed with -9 outlives it (issue 8, item 7): end ours here.
        for doc in self.db[JOB_EXECUTIONS].find({"pid": {"$ne": None}}, {"pid": 1}):
            try:
                if SOURCE_MARK in Path(f"/proc/{doc['pid']}/cmdline").read_text():
                    os.kill(doc["pid"], signal.SIGKILL)
            except (OSError, ProcessLookupError):
                pass
        for name in self.client.list_database_names():
            if name.startswith(self.db_name):  # ours and the destinations named after it
                self.client.drop_database(name)
        self.client.close()
