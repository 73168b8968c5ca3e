"""The fork server's own faults: each worker has one (executor/fork_server.py), and losing it loses no
guarantee of a run and stops no later run from starting."""

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from executor.child import FORK_SERVER, CannotStart, minimal_environment, start_child
from models.execution import ExecutionStatus
from tests.executor.runs import request_for, running
from tests.fakes import eventually
from tests.interpreters import script_python

PROJECT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")


def exited(child: int) -> bool:
    """Whether our child `child` has exited (its files closed), without reaping it. Its command line is
    empty earlier, while its files are still open."""
    info = os.waitid(os.P_PID, child, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    return info is not None


async def test_a_run_starts_after_the_fork_server_was_killed_between_runs():
    first = await start_child(["/bin/true"], minimal_environment(), grace_seconds=0.5)
    assert await first.wait() == 0
    killed = FORK_SERVER.pid
    os.kill(killed, signal.SIGKILL)
    await eventually(lambda: exited(killed), message="the fork server's death")
    second = await start_child(["/bin/true"], minimal_environment(), grace_seconds=0.5)
    assert await asyncio.wait_for(second.wait(), 10) == 0
    assert FORK_SERVER.pid != killed


async def test_a_run_whose_fork_server_is_killed_ends_and_leaves_no_process(
    runner, script, make_job, clock, readable_dir
):
    escapee = Path(readable_dir) / "escapee"
    argv = await script(f"""
        import pathlib, subprocess
        escaped = subprocess.Popen(["setsid", "sleep", "53"])
        pathlib.Path({str(escapee)!r}).write_text(str(escaped.pid))
        time.sleep(60)
    """)
    os.chmod(readable_dir, 0o777)  # the source (SOURCE_USER) writes its escapee's pid there
    run = asyncio.create_task(runner.run(request_for(await make_job(argv, timeout=30), clock)))
    await eventually(lambda: escapee.exists() and escapee.read_text(), timeout=10, message="the escapee")
    os.kill(FORK_SERVER.pid, signal.SIGKILL)
    outcome = await asyncio.wait_for(run, 20)
    # Its supervisor got the fork server's death signal and stopped the source, as for a dying worker.
    assert outcome.status == ExecutionStatus.FAILED, (outcome.error, outcome.log_tail)
    assert outcome.exit_code == -signal.SIGTERM
    assert not running(outcome.pid, "source_")
    assert not running(int(escapee.read_text()), "53")


async def test_a_fork_server_that_cannot_start_fails_the_run_clearly(monkeypatch):
    FORK_SERVER.close()  # the next run needs a new one
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    with pytest.raises(CannotStart, match="the fork server cannot start"):
        await start_child(["/bin/true"], minimal_environment(), grace_seconds=0.5)
    monkeypatch.undo()
    after = await start_child(["/bin/true"], minimal_environment(), grace_seconds=0.5)
    assert await asyncio.wait_for(after.wait(), 10) == 0


PROBE = textwrap.dedent("""
    import sys
    try:
        open(f"/proc/{sys.argv[1]}/maps").read()
        print("read")
    except OSError:
        print("denied")
""")
WORKER = textwrap.dedent("""
    import asyncio, os, sys
    from child import FORK_SERVER, minimal_environment, start_child

    async def probe(pid):
        source = await start_child([sys.executable, "-c", sys.argv[1], str(pid)], minimal_environment(),
                                   grace_seconds=0.5)
        seen = await source.stdout.read()
        await source.stderr.read()
        await source.wait()
        return seen.decode().strip()

    async def main():
        await probe(os.getpid())  # starts the fork server
        print(await probe(os.getpid()), await probe(FORK_SERVER.pid))

    asyncio.run(main())
""")


def test_a_source_of_the_workers_own_user_cannot_read_the_fork_servers_memory(readable_dir):
    # A source that could ptrace the fork server would take over every run it forks next. The "worker"
    # runs as the source user itself, so that no uid tells them apart: the worker (dumpable in this
    # script) is readable, and its fork server is not.
    for module in ("child.py", "fork_server.py", "supervisor.py"):
        shutil.copy(PROJECT / "executor" / module, readable_dir)
        Path(readable_dir, module).chmod(0o644)
    as_nobody = {"user": "nobody", "group": "nogroup", "extra_groups": []} if os.geteuid() == 0 else {}
    result = subprocess.run(
        [script_python(), "-c", WORKER, PROBE],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": readable_dir},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        cwd="/",
        **as_nobody,
    )
    assert result.stdout.split() == ["read", "denied"], result.stderr


def zombies_of(parent: int) -> list[int]:
    """Children of `parent` that ended and were not reaped (state Z in /proc)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fields = Path(f"/proc/{name}/stat").read_bytes().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent and fields[0] == b"Z":
            found.append(int(name))
    return found


async def test_the_fork_server_reaps_the_supervisors_of_finished_runs():
    for _ in range(3):
        process = await start_child(["/bin/true"], minimal_environment(), grace_seconds=0.5)
        assert await process.wait() == 0
    server = FORK_SERVER.pid
    await eventually(lambda: not zombies_of(server), message="no supervisor left unreaped")
