"""GET, the list and status read a job without the fields the worker keeps for itself, and answer byte for
byte what reading the whole document answered."""

from datetime import timedelta

import pytest
from bson import ObjectId

import api.sync_jobs
from models.execution import ExecutionStatus
from models.sync_job import UNSHOWN_JOB_FIELDS, WORKER_FIELDS, SyncJobView
from tests.api.helpers import create_job
from worker.job_status import JobStatusWriter

SHOWN = {field.alias or name for name, field in SyncJobView.model_fields.items()}


async def job_as_the_worker_leaves_it(client, ws, db, clock) -> dict:
    """A job with every field a job stores: created through the API, its schedule applied by a leader, then
    a failed run and a successful one, whose cursors are saved."""
    job = await create_job(client, ws, entities=["customers"], description="nightly")
    writer = JobStatusWriter(db)
    job_id = ObjectId(job["id"])
    await writer.schedule_applied([job_id], 1, clock.now() + timedelta(hours=1), clock.now(), term=3)
    await db.syncjobs.update_one({"_id": job_id}, {"$set": {"fenceTerm": 3}})
    for status, cursors in ((ExecutionStatus.FAILED, {}), (ExecutionStatus.SUCCEEDED, {"customers": "c-17"})):
        await writer.record_outcome(
            await db.syncjobs.find_one({"_id": job_id}),
            execution_id=ObjectId(),
            status=status,
            started_at=clock.now(),
            finished_at=clock.now() + timedelta(seconds=3),
            duration_ms=3000,
            error="source answered 503" if status == ExecutionStatus.FAILED else None,
            cursors=cursors,
        )
        await clock.advance(60)
    stored = await db.syncjobs.find_one({"_id": job_id})
    assert stored["cursors"] == {"customers": "c-17"} and stored["runCount"] == 2
    return stored


async def test_a_stored_job_holds_only_shown_fields_and_the_worker_fields(client, ws, db, clock):
    """A field the worker starts to keep must be named in WORKER_FIELDS (or shown): else every read copies it
    for nothing. And no shown field may be left out."""
    stored = await job_as_the_worker_leaves_it(client, ws, db, clock)
    assert set(stored) - SHOWN <= set(WORKER_FIELDS)
    assert {"cursors", "lastExecutionId", "timedRunCount", "fenceTerm"} <= set(stored)
    assert not SHOWN & set(UNSHOWN_JOB_FIELDS)


@pytest.mark.parametrize("path", ["", "?limit=50", "/{id}", "/{id}/status"])
async def test_reads_answer_what_reading_the_whole_job_answered(client, ws, db, clock, monkeypatch, path):
    stored = await job_as_the_worker_leaves_it(client, ws, db, clock)
    await create_job(client, ws, name="second")
    url = ws.jobs + path.format(id=stored["_id"])

    async def read() -> tuple[bytes, str | None]:
        resp = await client.get(url, headers=ws.headers)
        assert resp.status == 200, await resp.text()
        return await resp.read(), resp.headers.get("ETag")

    projected = await read()
    assert UNSHOWN_JOB_FIELDS == dict.fromkeys(WORKER_FIELDS, 0)  # the database was handed a copy
    monkeypatch.setattr(api.sync_jobs, "UNSHOWN_JOB_FIELDS", None)
    whole = await read()
    assert projected == whole
    assert b"c-17" not in projected[0] and b"fenceTerm" not in projected[0]
