"""What the commands say when something is wrong, and what they log when all is well."""

import asyncio
import signal
import sys

from structlog.testing import capture_logs

from models.secrets import SecretBox
from tests.test_cli import clean_env, free_port


async def syncjobs(*args: str, **env: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "syncjobs",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=clean_env(**env),
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode, out.decode(), err.decode()


def test_a_bad_setting_is_one_line_naming_the_variable_and_what_it_may_be(monkeypatch, capsys):
    from syncjobs.cli import main

    cases = {
        "LOG_FORMAT": ("pretty", "json or console"),
        "API_PORT": ("http", "an integer from 1 to 65535"),
        "LOG_LEVEL": ("loud", "debug, info, warning, error or critical"),
    }
    for variable, (value, allowed) in cases.items():
        # The environment is what is under test here: the entry point is the one place that reads it.
        with monkeypatch.context() as env:
            env.setenv(variable, value)
            assert main(["api"]) == 2
        assert (
            capsys.readouterr().err == f"syncjobs: {variable}='{value}' is not valid; it must be {allowed}\n"
        )


async def test_a_missing_secret_key_says_how_to_make_one_and_the_recipe_works():
    for code, _, err in await asyncio.gather(
        syncjobs("api", "--in-memory"), syncjobs("worker", "--in-memory")
    ):
        assert code == 2 and "Traceback" not in err
        recipe = err.split("Make one with: ", 1)[1].strip()
        assert recipe.startswith("python -c ")
        made = await asyncio.create_subprocess_exec(
            sys.executable, "-c", recipe.removeprefix("python -c ").strip("'"), stdout=asyncio.subprocess.PIPE
        )
        key = (await made.communicate())[0].decode().strip()
        SecretBox(key)  # a Fernet key, or SecretKeyInvalid


async def test_the_api_says_where_it_listens_without_colour_codes_in_a_pipe():
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "syncjobs",
        "api",
        "--in-memory",
        "--port",
        str(port),
        stdout=asyncio.subprocess.PIPE,
        env=clean_env(LOG_FORMAT="console", LOG_LEVEL="info", SYNCJOBS_SECRET_KEY=SecretBox.new_key()),
    )
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)
    assert "api_listening" in line and f"url=http://127.0.0.1:{port}" in line
    assert "\x1b[" not in line


async def test_each_request_is_logged_at_debug_not_info(client):
    with capture_logs() as logs:
        await client.get("/healthz")
    assert [entry["log_level"] for entry in logs if entry["event"] == "request_handled"] == ["debug"]
