"""The jobs' change mark: what tells a polling worker that there is something to read."""

import pytest

from models.errors import VersionMismatch
from models.job_changes import JobChangeMark
from models.sync_job import SyncJobSpec
from models.sync_job_store import SyncJobStore
from tests.factories import sync_job_body

SPEC = SyncJobSpec.model_validate(sync_job_body(dataSourceId="a" * 24, destinationDatabaseId="b" * 24))


async def test_every_create_and_edit_through_the_store_raises_the_mark(db, clock):
    store, marks = SyncJobStore(db), JobChangeMark(db)
    assert await marks.current() == 0
    job = await store.create("ws-a", SPEC, clock.now())
    assert await marks.current() == 1
    await store.update("ws-a", job["_id"], {"enabled": False}, clock.now(), expected_version=1)
    await store.update("ws-a", job["_id"], {"enabled": True}, clock.now(), expected_version=None)
    assert await marks.current() == 3
    stored = await db.change_marks.find_one({"_id": "syncjobs"})
    assert stored["changedAt"] == clock.now()


async def test_a_refused_edit_and_a_cursor_reset_leave_the_mark_alone(db, clock):
    store, marks = SyncJobStore(db), JobChangeMark(db)
    job = await store.create("ws-a", SPEC, clock.now())
    with pytest.raises(VersionMismatch):
        await store.update("ws-a", job["_id"], {"enabled": False}, clock.now(), expected_version=7)
    await store.reset_cursors("ws-a", job["_id"], None)
    assert await marks.current() == 1
