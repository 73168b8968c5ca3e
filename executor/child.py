"""Starting and stopping a source process: under its own supervisor, a minimal environment, no shell.

Every source runs under a supervisor (`executor/supervisor.py`; its docstring says why one per run), forked
for the run by this process's fork server (`executor/fork_server.py`; its docstring says why a fork server):
the worker talks to the supervisor only, and the supervisor makes sure that when the source ends nothing it
started is left.
"""

import asyncio
import atexit
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

# Lines longer than this are cut, not buffered: a child cannot make the worker hold one giant line.
LINE_LIMIT = 8 * 1024 * 1024
PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "TZ", "SYSTEMROOT", "TMPDIR")
FORK_SERVER_SCRIPT = str(Path(__file__).with_name("fork_server.py"))
# The supervisor starts in milliseconds; this bound only guards against one that never reports.
STARTUP_SECONDS = 30.0
# Past the kill grace, how long the supervisor gets to kill and reap before it is killed itself.
SUPERVISOR_MARGIN_SECONDS = 5.0
# Room for many requests queued at once, should the fork server be slow to take them.
SOCKET_BUFFER_BYTES = 4 * 1024 * 1024


class CannotStart(Exception):
    """The source's program could not be started (missing, not executable, ...)."""


def minimal_environment(
    extra: dict[str, str] | None = None, *, parent: dict[str, str] | None = None
) -> dict[str, str]:
    """The child's environment: a few harmless variables of ours, then the source's own. None of our
    secrets (database URLs, keys, tokens) leak into it."""
    parent = os.environ if parent is None else parent
    env = {name: parent[name] for name in PASSED_THROUGH if name in parent}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class ForkServer:
    """This process's fork server: started at the first run, and again whenever the last one is gone."""

    def __init__(self):
        self._process: subprocess.Popen | None = None
        self._channel: socket.socket | None = None
        self._owner = 0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def send(self, request: dict, fds: list[int]) -> None:
        """Hand one run's request, with the child's ends of its pipes, to a live fork server."""
        message = json.dumps(request).encode()
        for attempt in range(2):
            if not self._alive():
                try:
                    self._start()
                except OSError as error:
                    raise CannotStart(f"the fork server cannot start: {error}") from None
            try:
                socket.send_fds(self._channel, [message], fds)
                return
            except BlockingIOError:
                raise CannotStart("the fork server is not taking requests") from None
            except OSError as error:
                if attempt or not isinstance(error, BrokenPipeError | ConnectionError):
                    raise CannotStart(f"the fork server refused the request: {error}") from None
                self.close()  # it died since it was last used: the next one takes the request

    def _alive(self) -> bool:
        # A child of ours forked without exec has the same objects, not the fork server's parenthood.
        return self._process is not None and self._owner == os.getpid() and self._process.poll() is None

    def _start(self) -> None:
        self.close()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER_BYTES)
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-I",  # neither our packages nor the environment's PYTHON* variables: the stdlib only
                    "-S",
                    FORK_SERVER_SCRIPT,
                    "--socket-fd",
                    str(theirs.fileno()),
                    "--parent",
                    str(os.getpid()),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=minimal_environment(),
                start_new_session=True,  # no signal meant for the worker's terminal reaches the runs
                pass_fds=(theirs.fileno(),),
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        self._channel, self._owner = ours, os.getpid()

    def close(self) -> None:
        """Close our end: the fork server exits, and the runs it forked are stopped (their death signal)."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self._process is not None and self._owner == os.getpid():
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=5)
        self._process = None


FORK_SERVER = ForkServer()
atexit.register(FORK_SERVER.close)


class SourceProcess:
    """A running source, seen through its supervisor: the source's pipes, its pid and its exit code.

    The supervisor is the fork server's child, not ours: its status pipe closing tells us it has ended, and
    no signal goes to its pid after that (the pid could be another process's by then; in the moment before
    we see the pipe close it cannot: Linux hands out pids in turn, and would have to go round them all).
    """

    def __init__(
        self,
        started: dict,
        status: asyncio.StreamReader,
        stdin: asyncio.StreamWriter,
        stdout: asyncio.StreamReader,
        stderr: asyncio.StreamReader,
    ):
        self.pid: int = started["started"]
        self._supervisor: int = started["supervisor"]
        self._status = status
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        # Resolved with the source's own exit code when it ends (None if the supervisor died first).
        self.exited: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._watcher = asyncio.create_task(self._watch_status())

    async def _watch_status(self) -> None:
        try:
            while line := await self._status.readline():
                message = json.loads(line)
                if "exited" in message and not self.exited.done():
                    self.exited.set_result(message["exited"])
        finally:
            if not self.exited.done():
                self.exited.set_result(None)

    def _signal_supervisor(self, signum: int) -> None:
        if not self._watcher.done():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._supervisor, signum)

    def renew(self) -> None:
        """The worker still holds the job's lock: the source may run for another lease."""
        self._signal_supervisor(signal.SIGUSR1)

    async def stop(self, grace_seconds: float) -> int | None:
        """Ask the supervisor to stop the source (SIGTERM, SIGKILL after the grace; then every process left
        is killed) and wait for it; returns the exit code."""
        self._signal_supervisor(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(self._watcher), grace_seconds + SUPERVISOR_MARGIN_SECONDS)
        except TimeoutError:
            # A supervisor that does not answer is killed, and the source's group with it.
            _kill_group(self._supervisor)
            _kill_group(self.pid)
        return await self.wait()

    async def wait(self) -> int | None:
        """Wait until the supervisor is gone (so is everything the source started); returns the source's
        exit code, None when its supervisor died without telling it."""
        await asyncio.gather(self._watcher, return_exceptions=True)
        self.stdin.close()
        code = self.exited.result()
        if code is None:
            # Whatever killed the supervisor did not stop the source: it must not run on unsupervised.
            _kill_group(self.pid)
        return code


async def start_child(
    argv: list[str],
    env: dict[str, str],
    *,
    grace_seconds: float,
    lease_seconds: float | None = None,
    first_lease_seconds: float | None = None,
    cwd: str | None = None,
    user: int | None = None,
    group: int | None = None,
    extra_groups: list[int] | None = None,
) -> SourceProcess:
    """Start `argv` under a supervisor; raises CannotStart when the program cannot be run. `cwd`, `user`
    and `group` (executor/sandbox.py) are the source's: the supervisor stays this process's user, so it can
    stop and reap whatever the source starts, and drops them only for the source. With `lease_seconds`,
    the source is stopped unless `SourceProcess.renew()` is called within each lease (supervisor.py); the
    first lease is `first_lease_seconds` when that is shorter."""
    if extra_groups:
        raise ValueError("a source runs with no supplementary groups")
    request = {"argv": argv, "env": env, "cwd": cwd, "grace": grace_seconds, "lease": lease_seconds}
    if first_lease_seconds is not None:
        request["firstLease"] = first_lease_seconds
    if user is not None:
        request.update(user=user, group=group if group is not None else user)
    # (read end, write end) of the source's stdin, stdout and stderr, and of the supervisor's status.
    stdin, stdout, stderr, status = os.pipe(), os.pipe(), os.pipe(), os.pipe()
    theirs = [stdin[0], stdout[1], stderr[1], status[1]]
    ours = [stdin[1], stdout[0], stderr[0], status[0]]
    try:
        FORK_SERVER.send(request, theirs)
    except BaseException:
        _close(ours)
        raise
    finally:
        _close(theirs)
    status_reader, status_pipe = await _read_pipe(status[0], limit=LINE_LIMIT)
    try:
        first = json.loads(await asyncio.wait_for(status_reader.readline(), STARTUP_SECONDS) or b"{}")
    except (TimeoutError, ValueError):
        first = {}
    if "started" not in first:
        status_pipe.close()
        _close([stdin[1], stdout[0], stderr[0]])
        raise CannotStart(
            first.get("cannotStart") or "its supervisor ended, or did not report, before starting it"
        )
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(stdin[1], "wb", buffering=0)
    )
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    source_out, _ = await _read_pipe(stdout[0], limit=LINE_LIMIT)
    source_err, _ = await _read_pipe(stderr[0], limit=LINE_LIMIT)
    return SourceProcess(first, status_reader, writer, source_out, source_err)


async def _read_pipe(fd: int, *, limit: int) -> tuple[asyncio.StreamReader, asyncio.ReadTransport]:
    """A stream over the read end `fd`; its transport closes itself at EOF."""
    reader = asyncio.StreamReader(limit=limit)
    transport, _ = await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
    )
    return reader, transport


def _close(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
