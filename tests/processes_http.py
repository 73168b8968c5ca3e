"""Talking to `syncjobs api` running as a process of its own, from tests and benchmarks alike: plain
urllib, so that the caller's event loop (if any) is not involved."""

import json
import time
import urllib.request
from collections.abc import Callable


def wait_for(predicate: Callable[[], object], *, timeout: float, message: str):
    """Poll `predicate` until it returns something true; that value, or AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {message}")
        time.sleep(0.05)


def api_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
            return True
    except OSError:
        return False


def call_api(port: int, token: str, method: str, path: str, body: dict | None = None, *, timeout: float = 10):
    """One JSON request to the API on loopback; the decoded answer (an empty dict for 204)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"{}")
