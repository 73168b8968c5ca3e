import sys
import textwrap
import time

import pytest
from bson import ObjectId

from executor.runner import SubprocessRunner
from models.resources import DATA_SOURCE, DESTINATION
from models.sync_job import SyncJobSpec, new_job_document
from tests.executor.helpers import PRELUDE


@pytest.fixture
def fast_settings(settings):
    return settings.model_copy(update={"kill_grace_seconds": 0.5})


@pytest.fixture
def runner(db, secrets, fast_settings):
    return SubprocessRunner(db, secrets=secrets, settings=fast_settings, progress_seconds=0.05)


@pytest.fixture
def script(tmp_path):
    def write(body: str) -> list[str]:
        path = tmp_path / f"source_{time.monotonic_ns()}.py"
        path.write_text(PRELUDE + textwrap.dedent(body))
        return [sys.executable, str(path)]

    return write


@pytest.fixture
def make_job(db, clock, secrets):
    async def make(argv=None, *, source=None, sync_mode="full", entities=(), timeout=30, env=None) -> dict:
        fields = source or {
            "name": "src",
            "type": "command",
            "argv": argv,
            "env": env or {},
            "primaryKey": "id",
        }
        fields = DATA_SOURCE.spec.validate_python(fields).model_dump(by_alias=True, mode="json")
        src = await DATA_SOURCE.store(db).insert("ws-a", DATA_SOURCE.seal(fields, secrets), clock.now())
        dst = await DESTINATION.store(db).insert(
            "ws-a",
            {
                "name": "dst",
                "type": "mongodb",
                "database": "warehouse",
                "collectionPrefix": "",
                "batchSize": 50,
                "url": None,
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
                "entities": list(entities),
                "timeoutSeconds": timeout,
            }
        )
        job = new_job_document("ws-a", spec, clock.now())
        job["_id"] = ObjectId()
        return job

    return make
