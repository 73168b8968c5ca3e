"""No process outlives its run: each test is an attack a source can make on the worker host."""

import asyncio
import functools
import os
import signal
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
from bson import ObjectId

import executor.runner as runner_module
from executor.log_capture import LogTail
from models.execution import ExecutionStatus
from tests.executor.runs import request_for, running, warehouse
from tests.fakes import eventually

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="PR_SET_CHILD_SUBREAPER is Linux"
)


def pids_in(log_tail: list[str], prefix: str) -> list[int]:
    return [int(word) for line in log_tail if prefix in line for word in line.split() if word.isdigit()]


async def test_a_grandchild_that_starts_its_own_session_is_gone_after_the_run(
    runner, connector, make_job, clock
):
    # The audit's M1, as written: a shell source leaves `setsid sleep 47 &` behind.
    argv = await connector(
        "/bin/sh",
        "-c",
        'setsid sleep 47 & echo "escaped $!"; echo \'{"type": "result", "status": "succeeded"}\'',
    )
    outcome = await runner.run(request_for(await make_job(argv, timeout=20), clock))
    assert outcome.status == ExecutionStatus.SUCCEEDED, (outcome.error, outcome.log_tail)
    (escaped,) = pids_in(outcome.log_tail, "escaped")
    assert not running(escaped, "47")


async def test_a_source_exiting_zero_while_a_grandchild_holds_stdout_succeeds(
    runner, script, make_job, db, clock
):
    # The grandchild keeps the run's stdout open for a minute; the timeout is 10 s, so only ending by the
    # source's own exit gives `succeeded` (it used to end `timed_out`, holding the job lock till then).
    argv = await script("""
        import subprocess
        holder = subprocess.Popen(["sleep", "48"])
        emit(type="log", message=f"holder {holder.pid}")
        emit(type="record", entity="items", data={"id": 1})
        emit(type="result", status="succeeded")
        os._exit(0)
    """)
    outcome = await runner.run(request_for(await make_job(argv, timeout=10, sync_mode="incremental"), clock))
    assert outcome.status == ExecutionStatus.SUCCEEDED, (outcome.error, outcome.log_tail)
    assert outcome.exit_code == 0
    assert [doc["_id"] for doc in await warehouse(db, "items")] == [1]
    (holder,) = pids_in(outcome.log_tail, "holder")
    assert not running(holder, "48")


async def test_a_hanging_source_times_out_and_its_whole_tree_is_gone(runner, script, make_job, clock):
    # The daemon is found by its command line, so it must be this run's own: the same test on the other
    # backend may be running in the other pytest-xdist worker, with daemons of its own.
    seconds = f"49.{os.getpid()}"
    argv = await script(
        """
        import subprocess
        child = subprocess.Popen(["sleep", "SECONDS"])  # in the source's group
        escaped = subprocess.Popen(["setsid", "sleep", "SECONDS"])  # a session of its own
        if os.fork() == 0:  # a daemon: double fork and setsid, its parent gone at once
            os.setsid()
            if os.fork() == 0:
                os.execvp("sleep", ["sleep", "SECONDS"])
            os._exit(0)
        time.sleep(0.2)
        daemon = [int(p) for p in os.listdir("/proc") if p.isdigit()
                  and open(f"/proc/{p}/cmdline", "rb").read() == b"sleep\\x00SECONDS\\x00"
                  and int(p) not in (child.pid, escaped.pid)]
        emit(type="log", message="tree " + " ".join(str(p) for p in [child.pid, escaped.pid, *daemon]))
        time.sleep(60)
    """.replace("SECONDS", seconds)
    )
    outcome = await runner.run(request_for(await make_job(argv, timeout=2), clock))
    assert outcome.status == ExecutionStatus.TIMED_OUT, (outcome.error, outcome.log_tail)
    tree = pids_in(outcome.log_tail, "tree")
    assert len(tree) == 3, outcome.log_tail
    assert [pid for pid in tree if running(pid, seconds)] == []


async def test_one_run_ending_leaves_the_processes_of_a_run_still_going(
    runner, script, make_job, clock, readable_dir
):
    # Several runs at once: ending one must kill its own leftovers, never another run's live processes.
    # The sources (SOURCE_USER) write their escapees' pids where they may; pytest's tmp_path is root's alone.
    tmp_path = Path(readable_dir)
    os.chmod(readable_dir, 0o777)

    async def source(name: str, *, wait_for: str | None) -> str:
        return await script(f"""
            import pathlib, subprocess
            escaped = subprocess.Popen(["setsid", "sleep", "50"], stdout=subprocess.DEVNULL)
            pathlib.Path({str(tmp_path / name)!r}).write_text(str(escaped.pid))
            while {wait_for!r} and not pathlib.Path({wait_for!r}).exists():
                time.sleep(0.02)
            emit(type="result", status="succeeded")
        """)

    go = tmp_path / "go"
    long_run = asyncio.create_task(
        runner.run(request_for(await make_job(await source("long", wait_for=str(go)), timeout=20), clock))
    )
    await eventually(lambda: (tmp_path / "long").exists(), message="the long run's escapee")
    short = await runner.run(
        request_for(await make_job(await source("short", wait_for=None), timeout=20), clock)
    )
    assert short.status == ExecutionStatus.SUCCEEDED, (short.error, short.log_tail)
    assert not running(int((tmp_path / "short").read_text()), "50")
    long_escapee = int((tmp_path / "long").read_text())
    assert running(long_escapee, "50")
    go.touch()
    assert (await asyncio.wait_for(long_run, 20)).status == ExecutionStatus.SUCCEEDED
    assert not running(long_escapee, "50")


async def test_a_worker_killed_mid_run_leaves_no_source_process(tmp_path):
    # SIGKILL gives the worker no chance to stop anything: its fork server notices the worker's death, and
    # the run's supervisor its fork server's.
    pids = tmp_path / "pids"
    fork_server = tmp_path / "fork_server"
    source = tmp_path / "source.py"
    source.write_text(
        textwrap.dedent(f"""
            import os, pathlib, subprocess, time
            escaped = subprocess.Popen(["setsid", "sleep", "51"])
            pathlib.Path({str(pids)!r}).write_text(f"{{os.getpid()}} {{escaped.pid}}")
            time.sleep(60)
        """)
    )
    worker = tmp_path / "worker.py"
    worker.write_text(
        textwrap.dedent(f"""
            import asyncio, sys
            import pathlib
            from executor.child import FORK_SERVER, minimal_environment, start_child

            async def main():
                await start_child([sys.executable, {str(source)!r}], minimal_environment(), grace_seconds=0.5)
                pathlib.Path({str(fork_server)!r}).write_text(str(FORK_SERVER.pid))
                await asyncio.sleep(60)

            asyncio.run(main())
        """)
    )
    process = await asyncio.create_subprocess_exec(sys.executable, str(worker))
    try:
        await eventually(lambda: pids.exists() and len(pids.read_text().split()) == 2, timeout=10)
        await eventually(lambda: fork_server.exists() and fork_server.read_text(), timeout=10)
        source_pid, escaped = map(int, pids.read_text().split())
        assert running(source_pid, "source.py") and running(escaped, "51")
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()
    await eventually(lambda: not running(source_pid, "source.py") and not running(escaped, "51"), timeout=10)
    assert not running(int(fork_server.read_text()), "fork_server.py")


async def test_output_held_open_past_the_grace_ends_the_run_by_its_exit(monkeypatch, clock):
    # Where no supervisor can reap (no PR_SET_CHILD_SUBREAPER), a descendant may keep stdout open after the
    # source exited: the run still ends by the exit code once the reader has sat idle for the grace.
    monkeypatch.setattr(runner_module, "OUTPUT_GRACE_SECONDS", 0.05)
    job = {"_id": ObjectId(), "workspaceId": "ws-a", "timeoutSeconds": 30}
    session = runner_module.SyncSession(
        request_for(job, clock),
        writer=None,
        spec={},
        argv=["source"],
        env={},
        primary_keys={},
        entities=[],
        log_tail=LogTail(),
        kill_grace=0.5,
        progress_seconds=1.0,
    )
    exited = asyncio.get_running_loop().create_future()
    exited.set_result(0)
    held_open = asyncio.create_task(asyncio.sleep(3600))
    never_canceled = asyncio.create_task(asyncio.Event().wait())
    session._reading_idle = True
    try:
        ended = await asyncio.wait_for(
            session._await_end(SimpleNamespace(exited=exited), held_open, never_canceled), 5
        )
    finally:
        held_open.cancel()
        never_canceled.cancel()
    assert ended == (None, None)


async def test_a_source_whose_worker_stops_renewing_its_lock_is_stopped_when_the_lease_runs_out():
    """A worker paused (SIGSTOP) or cut off stops renewing; another worker may take the job once its lock
    lapses. The supervisor stops the source at the end of its lease, without the worker."""
    from executor.child import minimal_environment, start_child

    sleeper = [sys.executable, "-c", "import time; time.sleep(30)"]
    renewed = await start_child(sleeper, minimal_environment(), grace_seconds=0.2, lease_seconds=0.6)
    abandoned = await start_child(sleeper, minimal_environment(), grace_seconds=0.2, lease_seconds=0.6)
    try:
        for _ in range(6):  # 1.2 s: twice the lease, renewed every 0.2 s
            await asyncio.sleep(0.2)
            renewed.renew()
        code = await asyncio.wait_for(abandoned.wait(), 5)
        assert code != 0  # stopped by SIGTERM, long before its 30 s
        assert not renewed.exited.done()  # still going: its worker keeps renewing
    finally:
        await renewed.stop(0.2)
        await abandoned.stop(0.2)


async def test_a_source_started_late_in_its_lock_is_stopped_when_the_lock_would_lapse_not_a_lease_later():
    """The job lock was last renewed before the source started (reads, a destination slow to connect): if no
    renewal comes, the source must be gone when that lock lapses, not a whole lease after its own start.
    A renewal then gives it the whole lease again."""
    from executor.child import minimal_environment, start_child

    sleeper = [sys.executable, "-c", "import time; time.sleep(30)"]
    start = functools.partial(
        start_child,
        sleeper,
        minimal_environment(),
        grace_seconds=0.2,
        lease_seconds=30,
        first_lease_seconds=0.6,
    )
    renewed, abandoned = await start(), await start()
    try:
        for _ in range(6):  # 1.2 s: twice the first lease, renewed every 0.2 s
            await asyncio.sleep(0.2)
            renewed.renew()
        code = await asyncio.wait_for(abandoned.wait(), 5)  # its lease of 30 s would have let it go on
        assert code != 0
        await asyncio.sleep(1)  # past the first lease with no renewal since: the renewal gave it 30 s
        assert not renewed.exited.done()
    finally:
        await renewed.stop(0.2)
        await abandoned.stop(0.2)
