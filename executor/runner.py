"""The subprocess runner: one execution = one source process, its records written to the destination."""

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import structlog
from bson import ObjectId

from executor.child import CannotStart, SourceProcess, minimal_environment, start_child
from executor.destination import DestinationRefused, MongoWriter, RecordRefused, destination_database
from executor.log_capture import LogTail
from executor.outcome import RunOutcome, RunRequest
from executor.protocol import Log, Record, Result, State, parse_line
from executor.sandbox import SandboxUnavailable, source_sandbox
from executor.source_command import SourceRefused, source_command
from models.clock import Clock, SystemClock
from models.connectors import ConnectorCatalog
from models.execution import ExecutionStatus
from models.network_policy import NetworkPolicy
from models.recent_reads import RecentReads
from models.resources import DATA_SOURCE, DESTINATION
from models.secrets import SecretBox
from models.settings import Settings

log = structlog.get_logger("syncjobs.executor")
STDERR_TAIL_IN_ERROR = 20
# After the source exits, how long the output may stay open with nothing coming before the run ends anyway.
OUTPUT_GRACE_SECONDS = 2.0
LOCK_TOO_SHORT = "its job lock would lapse before the source could be stopped (its last renewal is too old)"


class SubprocessRunner:
    """Implements the worker's Runner: runs the job's source as a child process speaking JSON lines."""

    def __init__(
        self,
        db,
        *,
        secrets: SecretBox,
        settings: Settings,
        clock: Clock | None = None,
        progress_seconds: float = 1.0,
        connectors: ConnectorCatalog | None = None,
    ):
        self._db = db
        self._secrets = secrets
        self._settings = settings
        self._clock = clock or SystemClock()
        self._progress_seconds = progress_seconds
        # Runs launched within the same second share their reads of a data source, a destination and a
        # connector: a run costs the worker's few commands, not three more of its own.
        self._recent = RecentReads(self._clock)
        self._connectors = connectors or ConnectorCatalog.from_settings(db, settings, recent=self._recent)
        self._policy = NetworkPolicy.from_setting(settings.syncjobs_allowed_networks)

    async def run(self, request: RunRequest) -> RunOutcome:
        try:
            return await self._run(request)
        except (SourceRefused, DestinationRefused, SandboxUnavailable) as refused:
            # Nothing started: the source, its destination or its user is not one this worker may use.
            return RunOutcome(ExecutionStatus.FAILED, error=str(refused))

    async def _run(self, request: RunRequest) -> RunOutcome:
        job = request.job
        source = await self._load(DATA_SOURCE, job["workspaceId"], job["dataSourceId"])
        destination = await self._load(DESTINATION, job["workspaceId"], job["destinationDatabaseId"])
        if source is None or destination is None:
            missing = "data source" if source is None else "destination"
            return RunOutcome(ExecutionStatus.FAILED, error=f"the job's {missing} no longer exists")
        entities = selected_entities(job, source)
        if entities == []:
            # An empty selection syncs nothing; it must never be read as "everything" further down.
            return RunOutcome(
                ExecutionStatus.FAILED,
                error=f"none of the job's entities {job.get('entities')} is declared by its data source",
            )
        spec = {
            "executionId": str(request.execution["_id"]),
            "jobId": str(job["_id"]),
            "syncMode": job["syncMode"],
            "entities": entities,
            "cursors": (job.get("cursors") or {}) if job["syncMode"] == "incremental" else {},
            "source": {key: value for key, value in source.items() if key not in ("_id", "workspaceId")},
            # The HTTP connector applies the policy itself, after DNS, on every connection it opens.
            "network": {"allowedNetworks": self._policy.as_setting()},
        }
        argv = await source_command(source, self._connectors)
        secret_values = DATA_SOURCE.secret_values(source) + DESTINATION.secret_values(destination)
        async with (
            destination_database(self._db, job["workspaceId"], destination, policy=self._policy) as dest_db,
            source_sandbox(self._settings.source_user) as sandbox,
        ):
            writer = MongoWriter(
                dest_db,
                full=job["syncMode"] == "full",
                prefix=destination.get("collectionPrefix", ""),
                batch_size=destination.get("batchSize", 500),
                execution_id=str(request.execution["_id"]),
                now=self._clock.now(),
            )
            session = SyncSession(
                request,
                writer,
                spec,
                argv,
                minimal_environment(sandbox.environment()),
                primary_keys=primary_keys(source),
                entities=entities,
                log_tail=LogTail(secrets=secret_values),
                kill_grace=self._settings.kill_grace_seconds,
                progress_seconds=self._progress_seconds,
                spawn=sandbox.spawn,
                lease_seconds=source_lease_seconds(self._settings),
            )
            return await session.run()

    async def _load(self, kind, workspace_id: str, resource_id: str) -> dict[str, Any] | None:
        if not ObjectId.is_valid(resource_id):
            return None
        query = {"_id": ObjectId(resource_id), "workspaceId": workspace_id}
        doc = await self._recent.get(
            (kind.collection, workspace_id, resource_id),
            lambda: self._db[kind.collection].find_one(query),
        )
        return kind.opened(doc, self._secrets) if doc else None


def source_lease_seconds(settings: Settings) -> float:
    """How long a source may run without the worker renewing its job lock: the lock's TTL less the clock-skew
    margin and the kill grace, so that the source is gone before another worker can take the job. Never
    under two renewal intervals (a third of the TTL each), so one late renewal does not stop a healthy run."""
    ttl = settings.job_lock_ttl_seconds
    return max(ttl - settings.worker_clock_skew_seconds - settings.kill_grace_seconds, ttl * 2 / 3)


def selected_entities(job: dict[str, Any], source: dict[str, Any]) -> list[str] | None:
    """The entities this run syncs: the job's filter, or (no filter) every entity the source declares; None
    for a command source without a filter, whose entities only it knows. An empty list means none."""
    wanted = job.get("entities")
    if source["type"] == "http":
        declared = [entity["name"] for entity in source["entities"]]
        return [name for name in declared if wanted is None or name in wanted]
    return None if wanted is None else list(wanted)


def primary_keys(source: dict[str, Any]) -> dict[str, str]:
    if source["type"] == "http":
        return {entity["name"]: entity.get("primaryKey", "id") for entity in source["entities"]}
    return {}


class SyncSession:
    """One child process, read line by line while its records are written; ends in a RunOutcome."""

    def __init__(
        self,
        request: RunRequest,
        writer: MongoWriter,
        spec: dict,
        argv: list[str],
        env: dict[str, str],
        *,
        primary_keys: dict[str, str],
        entities: list[str] | None,
        log_tail: LogTail,
        kill_grace: float,
        progress_seconds: float,
        spawn: dict[str, Any] | None = None,
        lease_seconds: float | None = None,
    ):
        self._request = request
        self._lease_seconds = lease_seconds
        self._writer = writer
        self._spec = spec
        self._argv = argv
        self._env = env
        self._primary_keys = primary_keys
        self._entities = entities
        self._log = log_tail
        self._kill_grace = kill_grace
        self._progress_seconds = progress_seconds
        # Who the child runs as and where (executor/sandbox.py).
        self._spawn = spawn or {}
        self._stats: dict[str, dict[str, int]] = {}
        self._cursors: dict[str, Any] = {}
        self._result: Result | None = None
        # Whether the stdout reader is waiting on the pipe (not writing records), and how many lines it read.
        self._reading_idle = False
        self._lines_read = 0

    def _entity_stats(self, entity: str) -> dict[str, int]:
        return self._stats.setdefault(entity, {"read": 0, "written": 0, "failed": 0})

    def stats(self) -> dict[str, Any]:
        for entity, count in self._writer.written.items():
            self._entity_stats(entity)["written"] = count
        return {"entities": self._stats, "logLinesDropped": self._log.dropped}

    async def run(self) -> RunOutcome:
        refused = self._request.may_start() if self._request.may_start is not None else None
        first_lease = None
        if not refused and self._lease_seconds is not None and self._request.lock_age is not None:
            first_lease = self._lease_seconds - self._request.lock_age()
            if first_lease <= 0:
                refused = LOCK_TOO_SHORT
        if refused:
            log.warning("source_not_started", reason=refused)
            return RunOutcome(ExecutionStatus.ABANDONED, error=refused)
        try:
            process = await start_child(
                self._argv,
                self._env,
                grace_seconds=self._kill_grace,
                lease_seconds=self._lease_seconds,
                first_lease_seconds=first_lease,
                **self._spawn,
            )
        except CannotStart as error:
            return RunOutcome(ExecutionStatus.FAILED, error=f"cannot start {self._argv[0]!r}: {error}")
        log.info("source_started", pid=process.pid, argv0=self._argv[0])
        self._request.renewed = process.renew
        if self._request.started is not None:
            with contextlib.suppress(Exception):
                await self._request.started(process.pid)
        feeder = asyncio.create_task(self._feed_spec(process))
        stderr = asyncio.create_task(self._read_stderr(process))
        stdout = asyncio.create_task(self._read_stdout(process))
        canceled = asyncio.create_task(self._request.cancel.wait())
        reporter = asyncio.create_task(self._report_progress())
        status, error = None, None
        try:
            status, error = await self._await_end(process, stdout, canceled)
        finally:
            # The source's whole tree is gone when either call returns (see executor/supervisor.py).
            if process.exited.done():
                exit_code = await process.wait()
            else:
                exit_code = await process.stop(self._kill_grace)
            for task in (stdout, canceled, feeder, reporter):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(stderr, 5)
            await asyncio.gather(stdout, canceled, feeder, reporter, return_exceptions=True)
        return await self._conclude(status, error, exit_code, process.pid)

    async def _await_end(
        self, process: SourceProcess, stdout: asyncio.Task, canceled: asyncio.Task
    ) -> tuple[ExecutionStatus | None, str | None]:
        """Wait for the run to end. Returns a status when the run ended otherwise than by its exit (failed
        write, cancel, timeout), or (None, None): then its exit code and result message decide.

        A source whose output closed gets the kill grace to exit. A source that exited while its output is
        still open (a descendant holding it) ends by its exit code as soon as the reader has sat idle on the
        pipe for the output grace: what it had written is read first, and the job lock is not held for the
        rest of the timeout."""
        loop = asyncio.get_running_loop()
        timeout = self._request.timeout_seconds
        deadline = loop.time() + timeout
        closed_at: float | None = None
        lines_seen = -1
        while True:
            if stdout.done() and stdout.exception() is not None:
                return ExecutionStatus.FAILED, f"writing to the destination failed: {stdout.exception()}"
            if stdout.done() and process.exited.done():
                return None, None  # a cancel that came as the run ended does not undo its end
            if canceled.done():
                return ExecutionStatus.CANCELED, "canceled"
            now = loop.time()
            if now >= deadline:
                return ExecutionStatus.TIMED_OUT, f"timed out after {timeout:g} s"
            wait = deadline - now
            if stdout.done():
                closed_at = now if closed_at is None else closed_at
                if now - closed_at >= self._kill_grace:
                    return None, None  # stopped now; its exit code tells the rest
                wait = min(wait, closed_at + self._kill_grace - now)
            elif process.exited.done():
                if self._reading_idle and self._lines_read == lines_seen:
                    return None, None
                lines_seen = self._lines_read
                wait = min(wait, OUTPUT_GRACE_SECONDS)
            pending = {task for task in (stdout, canceled, process.exited) if not task.done()}
            await asyncio.wait(pending, timeout=wait, return_when=asyncio.FIRST_COMPLETED)

    async def _conclude(self, status, error, exit_code: int | None, pid: int) -> RunOutcome:
        if status is None:
            if exit_code is None:
                status, error = ExecutionStatus.FAILED, "the source's supervisor died before the source ended"
            elif exit_code != 0:
                status = ExecutionStatus.FAILED
                tail = "\n".join(self._log.last(STDERR_TAIL_IN_ERROR))
                error = f"source exited with code {exit_code}" + (f":\n{tail}" if tail else "")
            elif self._result is None:
                status, error = ExecutionStatus.FAILED, "source exited without a result message"
            elif self._result.status != "succeeded":
                status, error = ExecutionStatus.FAILED, f"source reported {self._result.status}"
            else:
                status = ExecutionStatus.SUCCEEDED
        try:
            if status == ExecutionStatus.SUCCEEDED:
                await self._writer.commit(self._entities or [])
            else:
                await self._writer.abort()
        except Exception as failure:  # the destination's own error, kept as the run's
            status, error = ExecutionStatus.FAILED, f"writing to the destination failed: {failure}"
        log.info("source_finished", exit_code=exit_code, status=status.value)
        return RunOutcome(
            status,
            error=error,
            exit_code=exit_code,
            pid=pid,
            stats=self.stats(),
            log_tail=self._log.lines(),
            cursors=self._cursors if status == ExecutionStatus.SUCCEEDED else {},
        )

    async def _feed_spec(self, process) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            process.stdin.write(json.dumps(self._spec, default=str).encode() + b"\n")
            await process.stdin.drain()
            process.stdin.close()

    async def _lines(self, stream: asyncio.StreamReader, name: str) -> AsyncIterator[str]:
        """The stream's lines as they come; a line over the limit is cut (and said so), not buffered."""
        while True:
            try:
                line = await stream.readline()
            except ValueError:
                self._log.add("(an over-long line was cut)", stream=name)
                continue
            if not line:
                return
            yield line.decode(errors="replace")

    async def _read_stderr(self, process) -> None:
        async for line in self._lines(process.stderr, "stderr"):
            self._log.add(line, stream="stderr")

    async def _read_stdout(self, process) -> None:
        wanted = None if self._entities is None else set(self._entities)
        self._reading_idle = True
        async for line in self._lines(process.stdout, "stdout"):
            self._reading_idle = False
            self._lines_read += 1
            await self._take(line, wanted)
            self._reading_idle = True

    async def _take(self, line: str, wanted: set[str] | None) -> None:
        message = parse_line(line)
        if isinstance(message, Record):
            if wanted is not None and message.entity not in wanted:
                return  # the job's entity filter holds even if the source ignores it
            stats = self._entity_stats(message.entity)
            stats["read"] += 1
            try:
                await self._writer.add(
                    message.entity, message.data, self._primary_keys.get(message.entity, "id")
                )
            except RecordRefused as error:
                stats["failed"] += 1
                if stats["failed"] <= 10:
                    self._log.add(str(error), stream="executor")
        elif isinstance(message, State):
            self._cursors[message.entity] = message.cursor
        elif isinstance(message, Result):
            self._result = message
        elif isinstance(message, Log):
            self._log.add(message.message, stream="source")
        else:
            self._log.add(message.text, stream="stdout")

    async def _report_progress(self) -> None:
        if self._request.progress is None:
            return
        last = time.monotonic()
        while True:
            await asyncio.sleep(max(0.0, self._progress_seconds - (time.monotonic() - last)))
            last = time.monotonic()
            with contextlib.suppress(Exception):
                await self._request.progress(self.stats(), self._log.take_unflushed())
