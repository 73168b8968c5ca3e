"""The mongoeco wire-protocol server as a process of its own, for the suite's fixture and the benchmarks."""

import selectors
import subprocess
from pathlib import Path

from pymongo import MongoClient

ROOT = Path(__file__).resolve().parents[2]
MONGO_PYTHON = ROOT / ".venv-mongo" / "bin" / "python"
SERVER = Path(__file__).with_name("server.py")


def start_server(timeout: float = 30.0) -> tuple[subprocess.Popen, str]:
    """Start the server process and return it with the URL it printed, once it answers a ping."""
    process = subprocess.Popen(
        [str(MONGO_PYTHON), str(SERVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            process.kill()
            raise RuntimeError(f"the mongoeco server printed no URL within {timeout:.0f} s")
    url = process.stdout.readline().strip()
    with MongoClient(url, serverSelectionTimeoutMS=int(timeout * 1000)) as client:
        client.admin.command("ping")
    return process, url


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
