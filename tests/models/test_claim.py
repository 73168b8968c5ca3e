"""The claim (models/execution_store.py): one update moves a queued execution to running; what it returns is
the execution as the caller read it, now running, as the database holds it."""

from datetime import timedelta

from bson import ObjectId

from models.execution import Trigger, new_execution_document
from models.execution_store import LAUNCH_FIELDS, ExecutionStore

JOB = {"_id": ObjectId(), "workspaceId": "ws-a"}


async def queued(db, clock) -> tuple[ExecutionStore, dict]:
    store = ExecutionStore(db, retention_days=30)
    doc = new_execution_document(job=JOB, trigger=Trigger.MANUAL, scheduled_for=clock.now(), now=clock.now())
    await store.queue([doc])
    return store, doc


async def test_a_won_claim_returns_the_execution_as_read_now_running_as_stored(db, clock):
    store, doc = await queued(db, clock)
    as_read = await db.job_executions.find_one({"_id": doc["_id"]}, LAUNCH_FIELDS)
    # A clock between two milliseconds: what the claim returns is what a read of it gives back.
    won, started = await store.claim(
        as_read, owner="host:1:w1", now=clock.now() + timedelta(microseconds=1500)
    )
    stored = await db.job_executions.find_one({"_id": doc["_id"]}, [*LAUNCH_FIELDS, "startedAt", "workerId"])
    assert won and started == stored
    assert (started["status"], started["workerId"]) == ("running", "host:1:w1")


async def test_a_claim_of_a_run_canceled_since_it_was_read_is_lost_and_changes_nothing(db, clock):
    store, doc = await queued(db, clock)
    await store.cancel(doc["_id"], clock.now(), "canceled by a user")
    assert await store.claim(doc, owner="host:1:w1", now=clock.now()) == (True, None)
    assert (await db.job_executions.find_one({"_id": doc["_id"]}))["status"] == "canceled"


async def test_a_claim_while_another_run_of_the_job_is_recorded_running_is_refused(db, clock):
    store, first = await queued(db, clock)
    assert (await store.claim(first, owner="host:1:w1", now=clock.now()))[0]
    second = new_execution_document(
        job=JOB, trigger=Trigger.RETRY, scheduled_for=clock.now(), now=clock.now(), attempt=2
    )
    await store.queue([second])
    assert await store.claim(second, owner="host:1:w2", now=clock.now()) == (False, None)
    assert (await db.job_executions.find_one({"_id": second["_id"]}))["status"] == "queued"
