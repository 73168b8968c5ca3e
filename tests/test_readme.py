"""The README's walkthrough runs as written, in order, against `syncjobs dev` as a process."""

import asyncio
import re
import shutil
import signal
from pathlib import Path

import pytest

from tests.test_cli import clean_env, free_port, start_dev

README = Path(__file__).resolve().parent.parent / "README.md"
MARKER = "<!-- walkthrough"
# Every request of the walkthrough must succeed as the README says: a 4xx or 5xx ends the script.
PRELUDE = """set -euo pipefail
curl() { command curl --silent --show-error --fail-with-body "$@"; echo; }
"""


def walkthrough() -> str:
    text = README.read_text()
    after = text[text.index(MARKER) :]
    match = re.search(r"```sh\n(.*?)```", after, re.DOTALL)
    assert match, "no sh block after the walkthrough marker"
    return match.group(1)


@pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("bash", "curl", "jq")),
    reason="the walkthrough uses bash, curl and jq",
)
async def test_the_readme_walkthrough_runs_as_written(tmp_path):
    port = free_port()
    script = tmp_path / "walkthrough.sh"
    # The README names the default port; this run takes a free one.
    script.write_text(PRELUDE + walkthrough().replace("http://localhost:8080", f"http://127.0.0.1:{port}"))
    process, printed = await start_dev(port)
    try:
        env = clean_env(WS=printed["workspace"], TOKEN=printed["token"], JOB=printed["job"])
        run = await asyncio.create_subprocess_exec(
            "bash", "-x", str(script), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
        )
        out, err = await asyncio.wait_for(run.communicate(), 120)
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)
    transcript = out.decode()
    assert run.returncode == 0, f"the walkthrough stopped at:\n{err.decode()[-3000:]}\n{transcript[-2000:]}"
    # What the README says the steps answer.
    assert re.search(r'Warning: 299 syncjobs ".*timeoutSeconds', transcript)
    # Whitespace is the encoder's: the API writes compact JSON.
    assert re.search(r'"nextFireTimes":\s*\[\]', transcript)
    assert re.search(r'"job":\s*\{"name":\s*"Daily shop sync"', transcript)
