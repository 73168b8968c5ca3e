"""The same code against a real replica set: change streams, bulk upserts, renames, real index semantics.

Run with the docker-compose stack:  docker compose up -d mongo
  MONGODB_URL='mongodb://localhost:27017/?replicaSet=rs0&directConnection=true' make test
"""

import asyncio
import os
import uuid
from datetime import timedelta

import pytest
from pymongo import AsyncMongoClient

from models.collections import ensure_indexes
from models.driver import upsert_by_id
from models.execution_store import ExecutionStore
from models.sync_job import SyncJobSpec
from models.sync_job_store import SyncJobStore
from worker.change_feed import Change, StreamFeed, open_feed
from worker.job_status import JobStatusWriter
from worker.leader_lock import LeaderLock

pytestmark = pytest.mark.mongo


@pytest.fixture
async def real_db():
    client = AsyncMongoClient(os.environ["MONGODB_URL"], tz_aware=True)
    name = f"syncjobs_test_{uuid.uuid4().hex[:8]}"
    db = client[name]
    await ensure_indexes(db)
    yield db
    await client.drop_database(name)
    await client.close()


def spec() -> SyncJobSpec:
    return SyncJobSpec.model_validate(
        {
            "name": "j",
            "dataSourceId": "a" * 24,
            "destinationDatabaseId": "b" * 24,
            "schedule": {"cron": "* * * * *"},
        }
    )


async def next_change(changes, timeout: float = 10) -> Change:
    return await asyncio.wait_for(anext(changes), timeout)


async def test_the_feed_uses_change_streams_on_a_replica_set(real_db, clock):
    feed = await open_feed(real_db, clock=clock, poll_seconds=2, resync_seconds=60, since=None)
    assert isinstance(feed, StreamFeed)


async def test_user_edits_and_deletes_arrive_but_worker_status_writes_do_not(real_db, clock):
    feed = StreamFeed(real_db)
    changes = feed.changes()
    first = asyncio.ensure_future(next_change(changes))
    await asyncio.sleep(0.5)  # let the streams open
    store = SyncJobStore(real_db)
    job = await store.create("ws", spec(), clock.now())
    assert (await first) == Change("job", job["_id"])
    await JobStatusWriter(real_db).next_run([job["_id"]], clock.now(), term=1)
    await store.update("ws", job["_id"], {"name": "renamed"}, clock.now(), expected_version=1)
    # The status write came first but is filtered out: the next event is the user's edit.
    assert (await next_change(changes)) == Change("job", job["_id"])
    await ExecutionStore(real_db, retention_days=1).queue_manual_run(job, clock.now())
    assert (await next_change(changes)).kind == "executions"
    await store.delete("ws", job["_id"], expected_version=None)
    assert (await next_change(changes)) == Change("job", job["_id"])
    await changes.aclose()


async def test_only_one_of_many_racing_workers_takes_the_lock(real_db, clock):
    locks = [
        LeaderLock(real_db, worker_id=f"h:{i}:x", clock=clock, lease_seconds=30, skew_seconds=2)
        for i in range(8)
    ]
    leases = await asyncio.gather(*(lock.acquire() for lock in locks))
    assert sum(lease is not None for lease in leases) == 1
    clock.set(clock.now() + timedelta(seconds=31))
    again = await asyncio.gather(*(lock.acquire() for lock in locks))
    winners = [lease for lease in again if lease is not None]
    assert len(winners) == 1 and winners[0].term == 2


async def test_partial_unique_index_allows_a_new_manual_run_after_a_cancel(real_db, clock):
    job = await SyncJobStore(real_db).create("ws", spec(), clock.now())
    store = ExecutionStore(real_db, retention_days=1)
    first = await store.queue_manual_run(job, clock.now())
    await store.request_cancel("ws", job["_id"], first["_id"], clock.now())
    second = await store.queue_manual_run(job, clock.now())
    assert second["_id"] != first["_id"]


async def test_bulk_upserts_and_the_full_mode_swap_work_on_a_server(real_db):
    staging, target = real_db["things__staging"], real_db["things"]
    await target.insert_one({"_id": "old"})
    await upsert_by_id(staging, [{"_id": i, "v": i} for i in range(1000)])
    await upsert_by_id(staging, [{"_id": i, "v": -i} for i in range(10)])
    await staging.rename("things", dropTarget=True)
    assert await target.count_documents({}) == 1000
    assert (await target.find_one({"_id": 3}))["v"] == -3


async def test_the_worker_reloads_from_change_streams_without_polling(real_db, clock, settings):
    """The clock never moves here: only a change stream can bring these edits to the schedule."""
    from executor.outcome import RunOutcome
    from models.execution import ExecutionStatus
    from tests.fakes import eventually
    from worker.scheduler import Scheduler

    class NoopRunner:
        async def run(self, request):
            return RunOutcome(ExecutionStatus.SUCCEEDED)

    scheduler = Scheduler(
        db=real_db, runner=NoopRunner(), clock=clock, settings=settings, worker_id="h:1:stream"
    )
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop))
    try:
        await asyncio.wait_for(scheduler.leading.wait(), 10)
        store = SyncJobStore(real_db)
        job = await store.create("ws", spec(), clock.now())
        await eventually(
            lambda: job["_id"] in scheduler.timetable, timeout=10, message="the create to arrive"
        )
        await store.update(
            "ws",
            job["_id"],
            {"schedule": {"cron": "0 3 * * *", "timezone": "UTC"}},
            clock.now(),
            expected_version=1,
        )
        await eventually(
            lambda: scheduler.timetable.next_fire_of(job["_id"]).hour == 3,
            timeout=10,
            message="the edit to arrive",
        )
        stored = await eventually(
            lambda: real_db.syncjobs.find_one({"_id": job["_id"], "scheduleAppliedVersion": 2}),
            timeout=10,
            message="the edit to be confirmed",
        )
        assert stored["version"] == 2
        await store.delete("ws", job["_id"], expected_version=None)
        await eventually(
            lambda: job["_id"] not in scheduler.timetable, timeout=10, message="the delete to arrive"
        )
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
