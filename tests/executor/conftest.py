"""Fixtures for runs of real source processes: connectors an operator registers, scripts, jobs."""

import textwrap
import time
from pathlib import Path

import pytest
from bson import ObjectId

from executor.runner import SubprocessRunner
from models.connectors import ConnectorCatalog, ConnectorSpec
from models.resources import DATA_SOURCE, DESTINATION
from models.sync_job import SyncJobSpec, new_job_document
from tests.interpreters import script_python

PRELUDE = """
import json, sys, os, signal, time
spec = json.loads(sys.stdin.readline())
def emit(**message):
    sys.stdout.write(json.dumps(message) + "\\n")
    sys.stdout.flush()
"""


@pytest.fixture
def fast_settings(settings):
    # The test servers listen on loopback, which the network policy refuses unless allowed.
    return settings.model_copy(
        update={"kill_grace_seconds": 0.5, "syncjobs_allowed_networks": "127.0.0.0/8,::1/128"}
    )


@pytest.fixture
def runner(db, secrets, fast_settings):
    return SubprocessRunner(db, secrets=secrets, settings=fast_settings, progress_seconds=0.05)


@pytest.fixture
def connector(db, clock):
    """Registers a connector, as an operator would, and returns its name."""

    async def register(executable: str, *args: str, **fields) -> str:
        name = f"c{time.monotonic_ns()}"
        spec = ConnectorSpec.model_validate(
            {"name": name, "executable": executable, "args": list(args), **fields}
        )
        await ConnectorCatalog(db).create(spec, clock.now())
        return name

    return register


@pytest.fixture
def script(readable_dir, connector):
    async def write(body: str) -> str:
        path = Path(readable_dir) / f"source_{time.monotonic_ns()}.py"
        path.write_text(PRELUDE + textwrap.dedent(body))
        path.chmod(0o644)
        return await connector(script_python(), str(path))

    return write


@pytest.fixture
def make_job(db, clock, secrets):
    async def make(
        name=None,
        *,
        source=None,
        sync_mode="full",
        entities=None,
        timeout=30,
        source_secrets=None,
        workspace="ws-a",
        destination=None,
    ) -> dict:
        fields = source or {
            "name": "src",
            "type": "command",
            "connector": name,
            "secrets": source_secrets or {},
            "primaryKey": "id",
        }
        fields = DATA_SOURCE.spec.validate_python(fields).model_dump(by_alias=True, mode="json")
        src = await DATA_SOURCE.store(db).insert(workspace, DATA_SOURCE.seal(fields, secrets), clock.now())
        # Stored as given, unvalidated: a test may plant what a hand edit could.
        dst = await DESTINATION.store(db).insert(
            workspace,
            {
                "name": "dst",
                "type": "mongodb",
                "database": "warehouse",
                "collectionPrefix": "",
                "batchSize": 50,
                "url": None,
                **(destination or {}),
            },
            clock.now(),
        )
        spec = SyncJobSpec.model_validate(
            {
                "name": "j",
                "dataSourceId": str(src["_id"]),
                "destinationDatabaseId": str(dst["_id"]),
                "schedule": {"cron": "@hourly"},
                "syncMode": sync_mode,
                "entities": None if entities is None else list(entities),
                "timeoutSeconds": timeout,
            }
        )
        job = new_job_document(workspace, spec, clock.now())
        job["_id"] = ObjectId()
        return job

    return make
