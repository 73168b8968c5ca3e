"""A client generated from the OpenAPI document, by a mainstream generator, drives create, run and status."""

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from api.openapi import openapi_document
from api.routes import ROUTES

pytest.importorskip(
    "openapi_python_client", reason="openapi-python-client (pip install -e '.[test]') generates the client"
)
pytest.importorskip("httpx", reason="the generated client speaks httpx")


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """The package openapi-python-client makes of our document, importable as `syncjobs_client`."""
    where = tmp_path_factory.mktemp("client")
    (where / "openapi.json").write_text(json.dumps(openapi_document(ROUTES)))
    generator = Path(sys.executable).with_name("openapi-python-client")
    result = subprocess.run(
        [
            str(generator),
            "generate",
            "--path",
            "openapi.json",
            "--meta",
            "none",
            "--output-path",
            "syncjobs_client",
        ],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (where / "syncjobs_client" / "client.py").exists(), result.stdout + result.stderr
    # Warnings other than the missing code formatter name parts of the document the generator had to drop.
    dropped = [line for line in result.stdout.splitlines() if line.startswith("WARNING")]
    assert dropped == [], result.stdout
    sys.path.insert(0, str(where))
    try:
        yield importlib.import_module("syncjobs_client")
    finally:
        sys.path.remove(str(where))
        for name in [name for name in sys.modules if name.startswith("syncjobs_client")]:
            del sys.modules[name]


async def test_a_generated_client_creates_runs_and_reads_the_status_of_a_job(generated, client, ws):
    from syncjobs_client.api.default import (
        get_sync_jobs_job_id_status,
        post_sync_jobs,
        post_sync_jobs_job_id_run,
    )
    from syncjobs_client.models import JobStatusView, RunAccepted, Schedule, SyncJobSpec, SyncJobView

    token = ws.headers["Authorization"].removeprefix("Bearer ")
    api = generated.AuthenticatedClient(base_url=str(client.make_url("")).rstrip("/"), token=token)
    async with api:
        spec = SyncJobSpec(
            name="generated",
            data_source_id=ws.data_source_id,
            destination_database_id=ws.destination_id,
            schedule=Schedule(cron="15 6 * * *", timezone="Asia/Tokyo"),
        )
        created = await post_sync_jobs.asyncio_detailed(ws.id, client=api, body=spec)
        assert created.status_code == 201 and isinstance(created.parsed, SyncJobView)
        job_id = created.parsed.id

        run = await post_sync_jobs_job_id_run.asyncio_detailed(ws.id, job_id, client=api)
        assert run.status_code == 202 and isinstance(run.parsed, RunAccepted)
        assert run.parsed.execution.id == run.parsed.execution_id

        status = await get_sync_jobs_job_id_status.asyncio_detailed(ws.id, job_id, client=api)
        assert isinstance(status.parsed, JobStatusView)
        assert status.parsed.active_execution.id == run.parsed.execution_id
        assert [moment.local[-6:] for moment in status.parsed.next_fire_times] == ["+09:00"] * 5
