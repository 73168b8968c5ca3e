"""The two database backends the store, worker, executor and API tests run on, through the same code.

`memory`: mongomock-motor in this process. `wire`: a mongoeco wire-protocol server in its own process (Python
3.13+, `.venv-mongo`, made by `make test`), reached with pymongo's `AsyncMongoClient` like a real server.
One server serves the whole session; each test gets a fresh database and leaves the server empty.
"""

import os
import uuid

import pytest
from mongomock_motor import AsyncMongoMockClient
from pymongo import AsyncMongoClient, monitoring

from models.collections import ensure_indexes
from tests import fakes
from tests.wire.process import MONGO_PYTHON, start_server, stop_server

ENABLE = (
    "wire backend not run: .venv-mongo is missing (needs Python 3.13+): install one "
    "(e.g. `pyenv install 3.13`) and run `make test`, which makes it"
)
SYSTEM_DATABASES = {"admin", "config", "local"}
# Where mongoeco differs from MongoDB, for `wire_differs` markers.
RENAME_REFUSED = (
    "renameCollection sent to the admin database (Collection.rename, full mode's swap) is refused"
)
# MongoDB brackets $lt/$lte/$gt/$gte by type (a date bound matches only dates); mongoeco 4.11 orders across
# types instead, so {finishedAt: {$lt: <date>}} also matches finishedAt: null (the notifier's lookback sweep).
NULL_BELOW_A_DATE = (
    "{field: {$lt: <date>}} matches documents whose field is null (no type bracketing), so the notifier's "
    "sweep of executions finished over a day ago also marks runs still queued or running as notified"
)
BACKENDS = ["memory", pytest.param("wire", marks=pytest.mark.wire)]


class Operations(monitoring.ConnectionPoolListener):
    """Counts connections checked out: a test's `settle()` waits while the wire server still owes an answer,
    as the in-memory database, which never yields, never makes it do."""

    def __init__(self):
        self.checked_out = 0

    def busy(self) -> bool:
        return self.checked_out > 0

    def connection_check_out_started(self, event):
        self.checked_out += 1

    def connection_check_out_failed(self, event):
        self.checked_out -= 1

    def connection_checked_in(self, event):
        self.checked_out -= 1

    def pool_created(self, event): ...
    def pool_ready(self, event): ...
    def pool_cleared(self, event): ...
    def pool_closed(self, event): ...
    def connection_created(self, event): ...
    def connection_ready(self, event): ...
    def connection_closed(self, event): ...
    def connection_checked_out(self, event): ...


@pytest.fixture(scope="session")
def wire_server():
    """The URL of the session's mongoeco server; stopped at the end of the session."""
    if not MONGO_PYTHON.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true, so the wire backend must run. {ENABLE}", pytrace=False)
        pytest.skip(ENABLE)
    process, url = start_server()
    try:
        yield url
    finally:
        stop_server(process)


@pytest.fixture(params=BACKENDS)
async def db(request):
    """A fresh database with the indexes made, on each backend in turn."""
    if request.param == "memory":
        database = AsyncMongoMockClient(tz_aware=True)[f"syncjobs_test_{uuid.uuid4().hex[:8]}"]
        await ensure_indexes(database)
        yield database
        return
    operations = Operations()
    client = AsyncMongoClient(
        request.getfixturevalue("wire_server"), tz_aware=True, event_listeners=[operations]
    )
    fakes.DATABASE_BUSY.append(operations.busy)
    try:
        database = client[f"syncjobs_test_{uuid.uuid4().hex[:8]}"]
        await ensure_indexes(database)
        yield database
        # Destinations live in databases of their own (named by the test): drop every one the test made.
        for name in set(await client.list_database_names()) - SYSTEM_DATABASES:
            await client.drop_database(name)
    finally:
        fakes.DATABASE_BUSY.remove(operations.busy)
        await client.close()


def backend_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    if callspec and "db" in callspec.params:
        return callspec.params["db"]
    return "wire" if item.get_closest_marker("wire") else None


def pytest_configure(config):
    config.addinivalue_line("markers", "wire: runs on the mongoeco wire-protocol server (the `db` parameter)")
    config.addinivalue_line(
        "markers", "memory_only(reason): runs on the in-memory backend only, for the reason given"
    )
    config.addinivalue_line(
        "markers", "wire_differs(reason): mongoeco differs from MongoDB here; an expected failure on wire"
    )


_counts: dict[tuple[str, str], int] = {}


def pytest_collection_modifyitems(config, items):
    for item in items:
        backend = backend_of(item)
        # Carried by every report of the test, so the count below also adds up where the tests ran in
        # pytest-xdist's worker processes and only their reports reach this one.
        item.user_properties.append(("backend", backend or "none"))
        if backend != "wire":
            continue
        if marker := item.get_closest_marker("memory_only"):
            item.add_marker(pytest.mark.skip(reason=f"memory only: {marker.kwargs['reason']}"))
        if marker := item.get_closest_marker("wire_differs"):
            item.add_marker(pytest.mark.xfail(reason=f"mongoeco: {marker.kwargs['reason']}", strict=True))


_figures: list[str] = []


def pytest_runtest_logreport(report):
    _figures.extend(
        value for name, value in report.user_properties if name == "figure" and report.when == "call"
    )
    if report.when == "call" or (report.when == "setup" and report.skipped):
        backend = dict(report.user_properties).get("backend", "none")
        key = (backend, "skipped" if report.when == "setup" else "ran")
        _counts[key] = _counts.get(key, 0) + 1


def pytest_terminal_summary(terminalreporter):
    line = ", ".join(
        f"{name} {_counts.get((name, 'ran'), 0)} ran ({_counts.get((name, 'skipped'), 0)} skipped)"
        for name in ("memory", "wire")
    )
    terminalreporter.write_line(
        f"database backends: {line}; {_counts.get(('none', 'ran'), 0)} more tests need no database"
    )
    for figure in _figures:
        terminalreporter.write_line(f"measured: {figure}")
    if _counts.get(("memory", "ran")) and not _counts.get(("wire", "ran")):
        terminalreporter.write_line(ENABLE)
