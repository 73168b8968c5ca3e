"""What a source process may touch of ours: run as an unprivileged user in a private directory, and a
worker that cannot be read through /proc by processes of its own user."""

import asyncio
import contextlib
import ctypes
import os
import pwd
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

PR_SET_DUMPABLE = 4


class SandboxUnavailable(Exception):
    """Sources cannot be started without privileges of ours."""


def make_non_dumpable() -> bool:
    """prctl(PR_SET_DUMPABLE, 0) on this process: /proc/<pid>/environ, mem and the like become root's, so
    a source running as the worker's own user cannot read our keys from them. Called once at worker start;
    False where the call is not available (not Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


async def source_user_problem(user: str, argv: list[str]) -> str | None:
    """Why sources running as `user` could not run `argv` (the built-in HTTP connector, say: pyenv keeps
    Python under /root); None when they can, or when no user switch happens."""
    if os.geteuid() != 0:
        return None
    try:
        account = pwd.getpwnam(user)
        process = await asyncio.create_subprocess_exec(
            *argv,
            user=account.pw_uid,
            group=account.pw_gid,
            extra_groups=[],
            cwd="/",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        if await process.wait() == 0:
            return None
        return f"{argv[0]} exits with {process.returncode} as {user}"
    except KeyError:
        return f"SOURCE_USER {user!r} does not exist on this host"
    except OSError as error:
        return f"{user} cannot start {argv[0]}: {error.strerror}"


@dataclass(frozen=True)
class Sandbox:
    """How to start one source: the keyword arguments of the spawn, and its private directory."""

    workdir: str
    spawn: dict[str, Any] = field(default_factory=dict)

    def environment(self) -> dict[str, str]:
        return {"HOME": self.workdir, "TMPDIR": self.workdir}


@contextlib.asynccontextmanager
async def source_sandbox(user: str) -> AsyncIterator[Sandbox]:
    """A private working directory (removed afterwards) and, when we are root, `user`'s uid and gid with
    no supplementary groups, so the source reads none of the worker's files or /proc entries."""
    workdir = tempfile.mkdtemp(prefix="syncjobs-source-")
    try:
        spawn: dict[str, Any] = {"cwd": workdir}
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam(user)
            except KeyError:
                raise SandboxUnavailable(f"SOURCE_USER {user!r} does not exist on this host") from None
            os.chown(workdir, account.pw_uid, account.pw_gid)
            spawn.update(user=account.pw_uid, group=account.pw_gid, extra_groups=[])
        yield Sandbox(workdir, spawn)
    finally:
        remove_later(workdir)


# Directories of ended runs being removed. In a thread, even when empty: a source may leave many files
# behind, and removing even an empty directory waits on the disk (1-5 ms an rmdir on the build machine's
# ext4, mounted `discard`). The run does not wait for it: its outcome, its job's lock and its run slot go
# on at once (the wait, with the thread's turn at the GIL, held each run's slot about 3.5 ms at concurrency
# 4). The default executor runs every removal before the event loop closes (asyncio.run waits for it).
_removals: set[asyncio.Future] = set()


def remove_later(workdir: str) -> None:
    removal = asyncio.get_running_loop().run_in_executor(None, shutil.rmtree, workdir, True)
    _removals.add(removal)
    removal.add_done_callback(_removals.discard)


async def removals_done() -> None:
    """Wait until the directories of the runs that have ended are gone."""
    while _removals:
        await asyncio.gather(*_removals, return_exceptions=True)
