"""Starting and stopping a source process: its own process group, a minimal environment, no shell."""

import asyncio
import contextlib
import os
import signal

# Lines longer than this are cut, not buffered: a child cannot make the worker hold one giant line.
LINE_LIMIT = 8 * 1024 * 1024
PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "TZ", "SYSTEMROOT", "TMPDIR")


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


async def start_child(argv: list[str], env: dict[str, str], **spawn) -> asyncio.subprocess.Process:
    """`spawn`: user, group, extra_groups and cwd of the child (executor/sandbox.py)."""
    return await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        start_new_session=True,  # its own process group, so a stop reaches its children too
        limit=LINE_LIMIT,
        **spawn,
    )


async def stop_child(process: asyncio.subprocess.Process, grace_seconds: float) -> int:
    """SIGTERM to the whole group, SIGKILL after `grace_seconds`; returns the exit code."""
    if process.returncode is None:
        _signal_group(process, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), grace_seconds)
        except TimeoutError:
            _signal_group(process, signal.SIGKILL)
    code = await process.wait()
    # Whatever the leader left behind in its group goes too.
    _signal_group(process, signal.SIGKILL)
    return code


def _signal_group(process: asyncio.subprocess.Process, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)
