"""Starting and stopping a source process: under its own supervisor, a minimal environment, no shell.

Every source runs under `executor/supervisor.py` (its docstring says why one per run): the worker talks to
the supervisor only, and the supervisor makes sure that when the source ends nothing it started is left.
"""

import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path

# Lines longer than this are cut, not buffered: a child cannot make the worker hold one giant line.
LINE_LIMIT = 8 * 1024 * 1024
PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "TZ", "SYSTEMROOT", "TMPDIR")
SUPERVISOR = str(Path(__file__).with_name("supervisor.py"))
# The supervisor starts in milliseconds; this bound only guards against one that never reports.
STARTUP_SECONDS = 30.0
# Past the kill grace, how long the supervisor gets to kill and reap before it is killed itself.
SUPERVISOR_MARGIN_SECONDS = 5.0


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


class SourceProcess:
    """A running source, seen through its supervisor: the source's pipes, its pid and its exit code."""

    def __init__(self, supervisor: asyncio.subprocess.Process, status: asyncio.StreamReader, pid: int):
        self._supervisor = supervisor
        self._status = status
        self.pid = pid
        self.stdin, self.stdout, self.stderr = supervisor.stdin, supervisor.stdout, supervisor.stderr
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

    def renew(self) -> None:
        """The worker still holds the job's lock: the source may run for another lease."""
        with contextlib.suppress(ProcessLookupError):
            self._supervisor.send_signal(signal.SIGUSR1)

    async def stop(self, grace_seconds: float) -> int:
        """Ask the supervisor to stop the source (SIGTERM, SIGKILL after the grace; then every process left
        is killed) and wait for it; returns the exit code."""
        with contextlib.suppress(ProcessLookupError):
            self._supervisor.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self._supervisor.wait(), grace_seconds + SUPERVISOR_MARGIN_SECONDS)
        except TimeoutError:
            # A supervisor that does not answer is killed, and the source's group with it.
            _kill_group(self._supervisor.pid)
            _kill_group(self.pid)
        return await self.wait()

    async def wait(self) -> int:
        """Wait until the supervisor is gone (so is everything the source started); returns the exit code."""
        supervisor_code = await self._supervisor.wait()
        await asyncio.gather(self._watcher, return_exceptions=True)
        code = self.exited.result()
        return supervisor_code if code is None else code


async def start_child(
    argv: list[str],
    env: dict[str, str],
    *,
    grace_seconds: float,
    lease_seconds: float | None = None,
    cwd: str | None = None,
    user: int | None = None,
    group: int | None = None,
    extra_groups: list[int] | None = None,
) -> SourceProcess:
    """Start `argv` under a supervisor; raises CannotStart when the program cannot be run. `cwd`, `user`
    and `group` (executor/sandbox.py) are the source's: the supervisor stays this process's user, so it can
    stop and reap whatever the source starts, and drops them only for the source. With `lease_seconds`,
    the source is stopped unless `SourceProcess.renew()` is called within each lease (supervisor.py)."""
    status_read, status_write = os.pipe()
    identity: list[str] = []
    if user is not None:
        identity += ["--user", str(user), "--group", str(group if group is not None else user)]
    if extra_groups:
        raise ValueError("a source runs with no supplementary groups")
    if lease_seconds is not None:
        identity += ["--lease", str(lease_seconds)]
    try:
        supervisor = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",  # neither our packages nor the environment's PYTHON* variables: the stdlib only
            "-S",
            SUPERVISOR,
            "--status-fd",
            str(status_write),
            "--grace",
            str(grace_seconds),
            *identity,
            "--",
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,  # no signal meant for the worker's terminal reaches the run
            pass_fds=(status_write,),
            cwd=cwd,
            limit=LINE_LIMIT,
        )
    except BaseException:
        os.close(status_read)
        raise
    finally:
        os.close(status_write)
    status = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(status), os.fdopen(status_read, "rb", buffering=0)
    )
    try:
        first = json.loads(await asyncio.wait_for(status.readline(), STARTUP_SECONDS) or b"{}")
    except (TimeoutError, ValueError):
        first = {}
    if "started" in first:
        return SourceProcess(supervisor, status, first["started"])
    _kill_group(supervisor.pid)
    await supervisor.wait()
    raise CannotStart(first.get("cannotStart") or f"its supervisor ended with code {supervisor.returncode}")


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
