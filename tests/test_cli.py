"""The commands as a user runs them: real processes, real signals."""

import asyncio
import os
import signal
import socket
import sys

import aiohttp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        key: value for key, value in os.environ.items() if key not in ("MONGODB_URL", "SYNCJOBS_SECRET_KEY")
    }
    return {**env, "LOG_LEVEL": "warning", **extra}


async def test_dev_prints_a_working_token_runs_the_demo_job_and_stops_cleanly_on_sigterm():
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "syncjobs",
        "dev",
        "--port",
        str(port),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=clean_env(),
    )
    try:
        printed = {}
        while "job" not in printed:
            line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
            assert line, "syncjobs dev ended before printing the demo"
            key, _, value = line.strip().partition(":")
            if key in ("token", "job"):
                printed[key] = value.split()[0]
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
        assert execution["stats"]["entities"]["customers"]["written"] > 0
    finally:
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 30)
    assert code == 0


async def test_a_missing_secret_key_is_a_sentence_and_exit_2():
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "syncjobs", "worker", stderr=asyncio.subprocess.PIPE, env=clean_env()
    )
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert err.decode().strip().endswith("it encrypts data-source secrets at rest.")
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


async def test_worker_status_port_serves_health_readiness_and_metrics_until_sigterm():
    from cryptography.fernet import Fernet

    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "worker",
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
