"""The chaos suite across processes (issue 8): `syncjobs api` and two or three `syncjobs worker` OS
processes on one database of the mongoeco wire-protocol server, for a minute of `kill -9`, SIGSTOP/SIGCONT
and SIGTERM of real workers at random moments while jobs are edited through the API; then the invariants,
read back from the database and from a ledger the sources themselves write.

The sources are real processes (a short Python script, 50-400 ms, one run in four failing so retries
happen). Each appends a `start` and an `end` line, with its execution id, to a ledger file of its own opening:
what really ran, whatever the workers recorded. The jobs:
- steady: every 2 s (a seconds-field cron, written to the database directly since the API takes minute crons
  only), never touched: every slot of theirs must end up with exactly one record;
- toggled: every 3 s, enabled, disabled, toggled and run by hand through the API (`queue` and
  `cancel_running` overlap policies);
- minutely: made through the API, their cron patched, run by hand, deleted, and new ones created.

One run serves the module; each invariant is a test of its own, so that one can be marked (xfail) alone.
Reproducing: the test's choices are seeded (CHAOS_SEED, printed on failure); the processes' timing is not,
so a seed replays the same sequence of faults and edits, not the same interleaving. CHAOS_SECONDS sets the
length (60 by default). A failure lists what was done, stamped with the wall clock as the processes' logs
are; those logs and the executions read back (executions.json) stay in pytest's tmp_path.
"""

import itertools
import json
import os
import random
import shutil
import signal
import tempfile
import time
import urllib.error
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from bson import json_util

from models.collections import JOB_EXECUTIONS
from models.cron import fire_times
from models.execution import ACTIVE_STATUSES, RETRYABLE_STATUSES
from tests.replica_cluster import SOURCE_MARK, Cluster, pid_of, wait_for

pytestmark = [pytest.mark.wire, pytest.mark.chaos]

SEED = int(os.environ.get("CHAOS_SEED") or random.SystemRandom().randrange(2**32))
CHAOS_SECONDS = float(os.environ.get("CHAOS_SECONDS", "60"))
STEADY_CRON = "* * * * * */2"
TOGGLED_CRON = "* * * * * */3"
LONGEST_RUN = 0.4
# A source killed before its `end` line ran no longer than its own sleep allows (it is never stopped itself).
LATEST_END = LONGEST_RUN + 0.5
# The invariants, as keys of Outcome.problems.
RAN_TWICE = "no (job, slot, attempt) ran twice"
UNRECORDED = "every source run has its record"
OVERLAP_SOURCES = "no two sources of a job run at once (the ledger)"
OVERLAP_RECORDS = "no two runs of a job overlap (startedAt-finishedAt)"
SLOTS = "every slot of an untouched job has exactly one record"
RETRIES = "every retry keeps to its policy"
LEFT_ACTIVE = "nothing is left running or queued"
NO_5XX = "the API never answers 5xx"
HAPPENED = "the chaos happened"
CHAOS_SOURCE = f"""
import json, os, random, signal, sys, time
spec = json.loads(sys.stdin.readline())
def note(kind):
    line = json.dumps({{"kind": kind, "executionId": spec["executionId"], "at": time.time()}}) + "\\n"
    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
    os.write(fd, line.encode())
    os.close(fd)
def stopped(signum, frame):
    note("end")
    os._exit(143)
signal.signal(signal.SIGTERM, stopped)
note("start")
time.sleep(random.uniform(0.05, {LONGEST_RUN}))
note("end")
if int(spec["executionId"], 16) % 4 == 0:
    sys.exit(1)
print(json.dumps({{"type": "result", "status": "succeeded"}}))
# {SOURCE_MARK}
"""


@dataclass
class Job:
    id: str
    kind: str  # steady, toggled, minutely
    max_attempts: int
    cron: str
    created: datetime | None = None  # of a steady job: from its first slot on, every slot has its record
    deleted: bool = False


@dataclass
class Chaos:
    """Faults and edits, chosen by a seeded RNG; what was done is kept, to be printed on failure."""

    cluster: Cluster
    rng: random.Random
    jobs: dict[str, Job]
    body: dict
    stopped: dict[int, float] = field(default_factory=dict)  # pid -> when to send SIGCONT
    done: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    answers: Counter = field(default_factory=Counter)  # HTTP statuses, for the figure

    def note(self, what: str) -> None:
        """Stamped with the wall clock, as the processes' logs are (in pytest's tmp_path)."""
        self.done.append(f"{datetime.now(UTC):%H:%M:%S.%f} {what}")

    def run(self, seconds: float) -> None:
        began = time.monotonic()
        while time.monotonic() - began < seconds:
            time.sleep(self.rng.uniform(0.2, 1.0))
            self.resume_due()
            if self.rng.random() < 0.35:
                self.fault()
            else:
                self.edit()
            self.keep_workers()
        for pid in list(self.stopped):
            self.resume(pid)

    # -- faults --------------------------------------------------------------------------------------

    def alive(self) -> list[int]:
        return [pid for pid, process in self.cluster.workers.items() if process.poll() is None]

    def target(self) -> int | None:
        """The leader half the time (the interesting one), else any live worker."""
        alive = self.alive()
        lock = self.cluster.lock()
        if lock is not None and pid_of(lock["owner"]) in alive and self.rng.random() < 0.5:
            return pid_of(lock["owner"])
        return self.rng.choice(sorted(alive)) if alive else None

    def fault(self) -> None:
        pid = self.target()
        if pid is None:
            return
        process = self.cluster.workers[pid]
        kind = self.rng.choice(["kill", "stop", "term"])
        if kind == "kill":
            process.kill()
            process.wait()
            self.stopped.pop(pid, None)
        elif pid in self.stopped:
            return  # stopped already; a SIGTERM would wait for the SIGCONT
        elif kind == "stop":
            process.send_signal(signal.SIGSTOP)
            self.stopped[pid] = time.monotonic() + self.rng.uniform(0.5, 5.0)  # often past the 2 s lease
        else:
            process.send_signal(signal.SIGTERM)
        self.note(f"{kind} {pid}")

    def resume(self, pid: int) -> None:
        self.cluster.workers[pid].send_signal(signal.SIGCONT)
        del self.stopped[pid]
        self.note(f"cont {pid}")

    def resume_due(self) -> None:
        for pid, when in list(self.stopped.items()):
            if time.monotonic() >= when:
                self.resume(pid)

    def keep_workers(self) -> None:
        """Usually two or three alive: a replacement for each one that died, sometimes a little later."""
        alive = len(self.alive())
        if alive < 2 or (alive < 3 and self.rng.random() < 0.4):
            self.note(f"start {self.cluster.start_worker().pid}")

    # -- edits through the API -----------------------------------------------------------------------

    def call(self, method: str, path: str, body: dict | None = None) -> dict | None:
        """A user's call: refusals (404 gone, 409 busy or disabled) are answers; a 5xx is a failure."""
        try:
            answer = self.cluster.call(method, path, body)
            self.answers[200] += 1
            return answer
        except urllib.error.HTTPError as error:
            self.answers[error.code] += 1
            if error.code >= 500:
                self.server_errors.append(f"{method} {path}: {error.code} {error.read()[:300]!r}")
            return None

    def edit(self) -> None:
        live = [job for job in self.jobs.values() if not job.deleted and job.kind != "steady"]
        job = self.rng.choice(live)
        path = f"/sync-jobs/{job.id}"
        if job.kind == "toggled":
            action = self.rng.choice(["toggle", "enable", "disable", "run", "run?evenIfDisabled=true"])
            self.call("POST", f"{path}/{action}")
        else:
            action = self.rng.choice(["cron", "run", "run", "delete", "create"])
            if action == "cron":
                job.cron = self.rng.choice(["* * * * *", "*/2 * * * *"])
                self.call("PATCH", path, {"schedule": {"cron": job.cron}})
            elif action == "run":
                self.call("POST", f"{path}/run")
            elif action == "delete" and len(live) > 3:
                self.call("DELETE", path)
                job.deleted = True
            else:
                action = "create"
                self.add_minutely()
        self.note(f"{action} {job.kind} {job.id}")

    def add_minutely(self) -> None:
        created = self.call(
            "POST",
            "/sync-jobs",
            {
                **self.body,
                "name": f"minutely-{len(self.jobs)}",
                "schedule": {"cron": "* * * * *", "timezone": "UTC"},
                "retry": {"maxAttempts": 2, "backoffSeconds": 0.5},
            },
        )
        if created is not None:
            self.jobs[created["id"]] = Job(created["id"], "minutely", 2, "* * * * *")


def new_ledger(directory: Path) -> Path:
    """A file every source appends to: made here, writable by the unprivileged source user."""
    os.chmod(directory, 0o755)
    path = directory / "ledger.jsonl"
    path.touch()
    os.chmod(path, 0o666)
    return path


@dataclass
class Outcome:
    """What one chaos run broke, by invariant, and how to replay and read it."""

    problems: dict[str, list[str]]
    done: list[str]
    figure: str

    def report(self, invariant: str) -> str:
        return (
            f"CHAOS_SEED={SEED} broke {invariant!r}:\n  "
            + "\n  ".join(self.problems[invariant][:10])
            + "\nwhat was done (the processes' logs and executions.json are in pytest's tmp_path):\n"
            + "\n".join(self.done)
        )


@pytest.fixture(scope="module")
def outcome(wire_server, tmp_path_factory) -> Iterator[Outcome]:
    """One chaos run for the module; each invariant is a test of its own, so each can be marked alone."""
    cluster = Cluster(wire_server, tmp_path_factory.mktemp("chaos"))
    ledger = new_ledger(Path(tempfile.mkdtemp(prefix="syncjobs-chaos-")))
    try:
        cluster.start(workers=3)
        yield run_chaos(cluster, ledger)
    finally:
        cluster.stop()
        shutil.rmtree(ledger.parent, ignore_errors=True)


def run_chaos(cluster: Cluster, ledger: Path) -> Outcome:
    jobs, body = make_jobs(cluster, ledger)
    chaos = Chaos(cluster, random.Random(SEED), jobs, body)
    for _ in range(2):
        chaos.add_minutely()
    chaos.run(CHAOS_SECONDS)
    disabled_at, left_active = settle(cluster, chaos)
    executions = list(cluster.db[JOB_EXECUTIONS].find())
    runs = ledger_runs(ledger)
    # Kept beside the processes' logs in pytest's tmp_path (the database is dropped): to read a failure.
    (cluster.tmp / "executions.json").write_text(json_util.dumps(executions, indent=1))
    problems: dict[str, list[str]] = defaultdict(list)
    for found in (
        check_ledger(runs, {str(e["_id"]): e for e in executions}),
        check_records(executions, jobs),
        check_slots(executions, jobs, disabled_at),
    ):
        for name, messages in found.items():
            problems[name].extend(messages)
    problems[LEFT_ACTIVE] = [
        f"{e['_id']} {e['status']} ({e['trigger']}, attempt {e['attempt']})" for e in left_active
    ]
    problems[NO_5XX] = chaos.server_errors
    faults = Counter(line.split()[1] for line in chaos.done)
    if len(runs) < 30 or faults["kill"] + faults["stop"] + faults["term"] < 5:
        problems[HAPPENED].append(f"only {len(runs)} source runs and faults {dict(faults)}")
    figure = (
        f"process chaos (seed {SEED}): {CHAOS_SECONDS:g} s, {dict(faults)}, HTTP {dict(chaos.answers)}, "
        f"{len(runs)} source runs, {len(executions)} records"
    )
    return Outcome(problems, chaos.done, figure)


def make_jobs(cluster: Cluster, ledger: Path) -> tuple[dict[str, Job], dict]:
    source = cluster.command_source("chaos", CHAOS_SOURCE, str(ledger))
    destination = cluster.call(
        "POST", "/destinations", {"name": "d", "type": "mongodb", "database": cluster.db_name + "_dest"}
    )
    body = {
        "dataSourceId": source["id"],
        "destinationDatabaseId": destination["id"],
        "syncMode": "full",
        "retry": {"maxAttempts": 3, "backoffSeconds": 0.5},  # retries come due within the settling time
    }
    jobs: dict[str, Job] = {}
    for n in range(2):
        doc = cluster.insert_job({**body, "name": f"steady-{n}"}, cron=STEADY_CRON)
        jobs[str(doc["_id"])] = Job(str(doc["_id"]), "steady", 3, STEADY_CRON, doc["createdAt"])
    for n, policy in enumerate(["queue", "cancel_running"]):
        doc = cluster.insert_job({**body, "name": f"toggled-{n}", "overlapPolicy": policy}, cron=TOGGLED_CRON)
        jobs[str(doc["_id"])] = Job(str(doc["_id"]), "toggled", 3, TOGGLED_CRON)
    return jobs, body


def settle(cluster: Cluster, chaos: Chaos) -> tuple[datetime, list[dict]]:
    """Once a leader is back: disable every job (so nothing new comes due), stop every worker gracefully,
    then one worker alone until nothing is queued or running. Returns when the jobs were disabled and what
    was still active after the settling time."""
    if not chaos.alive():
        chaos.cluster.start_worker()
    cluster.leader_after(0, timeout=20)
    time.sleep(1.5)  # the leader fires a slot or two of its own
    disabled_at = datetime.now(UTC)
    for job in chaos.jobs.values():
        if not job.deleted:
            chaos.call("POST", f"/sync-jobs/{job.id}/disable")
    cluster.stop_workers()
    cluster.start_worker()
    active = {"status": {"$in": ACTIVE_STATUSES}}
    try:
        wait_for(
            lambda: cluster.db[JOB_EXECUTIONS].count_documents(active) == 0,
            timeout=25,
            message="nothing queued or running",
        )
    except AssertionError:
        pass  # what is left is reported by the invariant below
    cluster.stop_workers()
    return disabled_at, list(cluster.db[JOB_EXECUTIONS].find(active))


def ledger_runs(ledger: Path) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = defaultdict(list)
    for line in ledger.read_text().splitlines():
        entry = json.loads(line)
        if entry["kind"] == "start":
            runs[entry["executionId"]].append({"start": entry["at"], "end": None})
        else:
            open_runs = [run for run in runs[entry["executionId"]] if run["end"] is None]
            if open_runs:
                open_runs[0]["end"] = entry["at"]
    return runs


def overlaps(intervals: list[tuple]) -> list[str]:
    """Of (start, end, name) intervals of one job: each that starts before the one before it ended."""
    ordered = sorted(intervals)
    return [
        f"{name_b} started at {start_b} before {name_a} ended at {end_a}"
        for (_, end_a, name_a), (start_b, _, name_b) in zip(ordered, ordered[1:], strict=False)
        if start_b < end_a
    ]


def check_ledger(runs: dict[str, list[dict]], by_id: dict[str, dict]) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = defaultdict(list)
    per_job: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for execution_id, started in runs.items():
        execution = by_id.get(execution_id)
        if execution is None:
            problems[UNRECORDED].append(f"a source ran for unknown execution {execution_id}")
            continue
        key = f"job {execution['jobId']} slot {execution['scheduledFor']:%H:%M:%S.%f} #{execution['attempt']}"
        if len(started) > 1:
            problems[RAN_TWICE].append(f"{key} ({execution_id}) ran {len(started)}x")
        if execution.get("startedAt") is None:
            problems[UNRECORDED].append(f"{key} ran but is recorded {execution['status']}")
        for run in started:
            end = run["end"] if run["end"] is not None else run["start"] + LATEST_END
            per_job[str(execution["jobId"])].append((run["start"], end, f"{key} ({execution_id})"))
    for intervals in per_job.values():
        problems[OVERLAP_SOURCES].extend(overlaps(intervals))
    return problems


def check_records(executions: list[dict], jobs: dict[str, Job]) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = defaultdict(list)
    by_id = {execution["_id"]: execution for execution in executions}
    keys = Counter((e["jobId"], e["scheduledFor"], e["attempt"]) for e in executions)
    problems[RAN_TWICE].extend(f"{key} has {count} records" for key, count in keys.items() if count > 1)
    per_job: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for execution in executions:
        if execution.get("startedAt") is None:
            continue
        finished = execution.get("finishedAt") or datetime.max.replace(tzinfo=UTC)
        name = f"{execution['_id']} ({execution['status']}, attempt {execution['attempt']})"
        per_job[str(execution["jobId"])].append((execution["startedAt"], finished, name))
    for intervals in per_job.values():
        problems[OVERLAP_RECORDS].extend(overlaps(intervals))
    for execution in executions:
        if execution["attempt"] <= 1:
            continue
        job = jobs[str(execution["jobId"])]
        previous = by_id.get(execution.get("retryOf"))
        if execution["attempt"] > job.max_attempts:
            problems[RETRIES].append(
                f"{execution['_id']}: attempt {execution['attempt']} of at most {job.max_attempts}"
            )
        if (
            previous is None
            or previous["attempt"] != execution["attempt"] - 1
            or previous["status"] not in {status.value for status in RETRYABLE_STATUSES}
        ):
            problems[RETRIES].append(
                f"{execution['_id']} (attempt {execution['attempt']}) retries "
                f"{previous and (previous['_id'], previous['status'], previous['attempt'])}"
            )
    return problems


def check_slots(executions: list[dict], jobs: dict[str, Job], disabled_at: datetime) -> dict[str, list[str]]:
    """Every slot of a steady job before it was disabled has exactly one record: fired (attempt 1, whatever
    became of it), skipped, or inside one missed range; no slot after it has more than one."""
    problems: dict[str, list[str]] = defaultdict(list)
    for job in (job for job in jobs.values() if job.kind == "steady"):
        mine = [e for e in executions if str(e["jobId"]) == job.id and e["trigger"] == "schedule"]
        records: Counter = Counter(e["scheduledFor"] for e in mine if e["attempt"] == 1)
        for execution in mine:
            if missed := execution.get("missed"):
                slots = [missed["firstSlot"]]
                for slot in fire_times(job.cron, missed["firstSlot"], "UTC"):
                    if slot > missed["lastSlot"]:
                        break
                    slots.append(slot)
                if len(slots) != missed["count"]:
                    problems[SLOTS].append(f"job {job.id}: missed range {missed} holds {len(slots)} slots")
                records.update(slots)
        # The first slot is the first after a leader first saw the job: within a poll, or a term's start
        # when the chaos left none (a takeover takes up to the lease and a second, stopped ones longer).
        first = min(records, default=None)
        if first is None or first > job.created + timedelta(seconds=15):
            problems[SLOTS].append(f"job {job.id}: first record at {first}")
            continue
        last = max([*records, disabled_at])
        slots = [first, *itertools.takewhile(last.__ge__, fire_times(job.cron, first, "UTC"))]
        for slot in slots:
            count = records[slot]
            if count > 1 or (count == 0 and slot < disabled_at):
                problems[SLOTS].append(f"job {job.id} slot {slot:%H:%M:%S}: {count} records")
    return problems


def test_the_chaos_ran_real_syncs_through_real_faults(outcome, record_property):
    record_property("figure", outcome.figure)
    assert not outcome.problems[HAPPENED], outcome.report(HAPPENED)


def test_no_job_slot_and_attempt_runs_twice(outcome):
    assert not outcome.problems[RAN_TWICE], outcome.report(RAN_TWICE)


def test_every_source_run_has_its_execution_record(outcome):
    assert not outcome.problems[UNRECORDED], outcome.report(UNRECORDED)


def test_no_two_runs_of_a_job_overlap_in_the_records(outcome):
    assert not outcome.problems[OVERLAP_RECORDS], outcome.report(OVERLAP_RECORDS)


def test_no_two_sources_of_a_job_run_at_once(outcome):
    assert not outcome.problems[OVERLAP_SOURCES], outcome.report(OVERLAP_SOURCES)


def test_every_slot_of_an_untouched_job_has_exactly_one_record(outcome):
    assert not outcome.problems[SLOTS], outcome.report(SLOTS)


def test_every_retry_keeps_to_its_policy(outcome):
    assert not outcome.problems[RETRIES], outcome.report(RETRIES)


def test_nothing_is_left_running_or_queued_once_one_worker_has_settled(outcome):
    assert not outcome.problems[LEFT_ACTIVE], outcome.report(LEFT_ACTIVE)


def test_the_api_never_answers_5xx(outcome):
    assert not outcome.problems[NO_5XX], outcome.report(NO_5XX)
