"""The commands as a user runs them: real processes, real signals."""

import asyncio
import os
import signal
import socket
import sys

import aiohttp
import pytest

from tests.conftest import SECRET_KEY
from tests.interpreters import http_connector_user


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        key: value for key, value in os.environ.items() if key not in ("MONGODB_URL", "SYNCJOBS_SECRET_KEY")
    }
    return {**env, "LOG_LEVEL": "warning", **extra}


async def start_dev(port: int, *, stderr=asyncio.subprocess.DEVNULL, **env: str):
    """`syncjobs dev` on `port`, and what it printed of the demo: workspace, token and job."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "syncjobs",
        "dev",
        "--port",
        str(port),
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
        env=clean_env(**env),
    )
    printed = {}
    while "job" not in printed:
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        assert line, "syncjobs dev ended before printing the demo"
        key, _, value = line.strip().partition(":")
        if key in ("workspace", "token", "job"):
            printed[key] = value.split()[0]
    return process, printed


async def test_dev_prints_a_working_token_runs_the_demo_job_and_stops_cleanly_on_sigterm():
    port = free_port()
    process, printed = await start_dev(
        port, stderr=asyncio.subprocess.PIPE, SOURCE_USER=http_connector_user()
    )
    try:
        base = f"http://127.0.0.1:{port}/api/workspaces/demo/sync-jobs/{printed['job']}"
        headers = {"Authorization": f"Bearer {printed['token']}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.post(f"{base}/run") as response:
                body = await response.json()
                # On a minute boundary the demo's own schedule may have started a run first: follow that one.
                assert response.status in (202, 409), body
                execution_id = (
                    body["executionId"] if response.status == 202 else body["error"]["details"]["executionId"]
                )
            for _ in range(200):
                async with http.get(f"{base}/executions/{execution_id}") as response:
                    execution = await response.json()
                if execution["status"] not in ("queued", "running"):
                    break
                await asyncio.sleep(0.1)
            assert execution["status"] == "succeeded", execution
            # On a minute boundary the schedule's run may have synced the customers just before this one
            # (incremental: this one then reads nothing new); between them, the demo wrote its customers.
            async with http.get(f"{base}/executions") as response:
                runs = (await response.json())["items"]
        written = sum(
            (run.get("stats") or {}).get("entities", {}).get("customers", {}).get("written", 0)
            for run in runs
            if run["status"] == "succeeded"
        )
        assert written > 0, runs
    finally:
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 30)
    assert code == 0


async def test_a_missing_secret_key_is_a_sentence_and_exit_2():
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "syncjobs",
        "worker",
        "--in-memory",
        stderr=asyncio.subprocess.PIPE,
        env=clean_env(),
    )
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert "it encrypts data-source secrets at rest." in err.decode()
    assert "Traceback" not in err.decode()


async def test_token_create_refuses_the_in_memory_database():
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "syncjobs",
        "token",
        "create",
        "--workspace",
        "w",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=clean_env(),
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2 and out == b"" and b"MONGODB_URL is unset" in err


def test_dev_prints_its_token_once(capsys):
    from syncjobs.processes import print_welcome

    print_welcome("127.0.0.1", 8080, {"token": "sjt_once", "job": {"_id": "j1"}}, in_memory=True)
    assert capsys.readouterr().out.count("sjt_once") == 1


async def run_to_the_end(*args: str, timeout: float = 30, **env: str) -> tuple[int, str]:
    """Run `syncjobs ARGS` to its exit; its exit code and what it wrote to stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "syncjobs",
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=clean_env(SYNCJOBS_SECRET_KEY=SECRET_KEY, **env),
    )
    _, err = await asyncio.wait_for(process.communicate(), timeout)
    return process.returncode, err.decode()


def one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("command", ["api", "worker"])
async def test_api_and_worker_refuse_to_start_without_a_database_url(command):
    code, err = await run_to_the_end(command)
    assert code == 2
    assert "MONGODB_URL is unset" in one_line(err) and "--in-memory" in err


async def test_an_unreachable_database_is_one_line_naming_the_host_within_the_connect_timeout():
    with socket.socket() as closed:  # bound, never listening: connections to it are refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        url = f"mongodb://someone:hunter2@127.0.0.1:{port}/?replicaSet=rs0"
        code, err = await run_to_the_end("worker", MONGODB_URL=url, MONGODB_CONNECT_TIMEOUT_SECONDS="1")
    assert code == 2
    assert f"127.0.0.1:{port} did not answer within 1 s" in one_line(err)
    assert "hunter2" not in err


@pytest.mark.parametrize("command", [["api", "--in-memory"], ["dev"]])
async def test_a_busy_port_is_one_line_naming_the_port_setting(command):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, err = await run_to_the_end(*command, "--port", str(port))
    assert code == 2
    assert f"127.0.0.1:{port} is in use" in one_line(err) and "--port or API_PORT" in err


@pytest.mark.wire
async def test_a_worker_that_requires_change_streams_refuses_a_server_without_them(wire_server):
    code, err = await run_to_the_end(
        "worker", MONGODB_URL=wire_server, MONGODB_DB=f"refuse_{os.getpid()}", RELOAD_MODE="change_streams"
    )
    assert code == 2
    assert "RELOAD_MODE=change_streams" in one_line(err) and "$changeStream" in err


async def test_worker_status_port_serves_health_readiness_and_metrics_until_sigterm():
    from cryptography.fernet import Fernet

    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "worker",
        "--in-memory",
        "--status-port",
        str(port),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=clean_env(SYNCJOBS_SECRET_KEY=Fernet.generate_key().decode()),
    )
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
                        if response.status == 200:
                            assert (await response.json())["role"] == "leader"  # alone, it leads
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the worker's status port never answered ready")
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 200
            async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                assert "syncjobs_worker_leader 1.0" in await response.text()
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
