"""A claim handed back (its workspace was at the fleet's cap) returns to the queue, unless it was asked to
stop meanwhile: then it ends canceled, since a queued run with a cancel request is one no worker can claim."""

from bson import ObjectId

from models.execution import Trigger, new_execution_document
from models.execution_store import ExecutionStore

JOB = {"_id": ObjectId(), "workspaceId": "ws-a"}


async def claimed(db, clock) -> tuple[ExecutionStore, dict]:
    store = ExecutionStore(db, retention_days=30)
    doc = new_execution_document(job=JOB, trigger=Trigger.MANUAL, scheduled_for=clock.now(), now=clock.now())
    await store.queue([doc])
    won, started = await store.claim(doc, owner="host:1:w1", now=clock.now())
    assert won and started is not None
    return store, started


async def test_a_handed_back_claim_is_queued_again_as_it_was(db, clock):
    store, started = await claimed(db, clock)
    await store.hand_back(started, owner="host:1:w1", now=clock.now())
    stored = await db.job_executions.find_one({"_id": started["_id"]})
    assert stored["status"] == "queued" and "workerId" not in stored and "startedAt" not in stored
    won, again = await store.claim(started, owner="host:1:w2", now=clock.now())
    assert won and again["workerId"] == "host:1:w2"


async def test_a_claim_asked_to_stop_before_it_was_handed_back_ends_canceled_not_stuck_in_the_queue(
    db, clock
):
    store, started = await claimed(db, clock)
    assert await store.cancel(started["_id"], clock.now(), "canceled by a user") is not None
    await store.hand_back(started, owner="host:1:w1", now=clock.now())
    stored = await db.job_executions.find_one({"_id": started["_id"]})
    assert (stored["status"], stored["startedAt"]) == ("canceled", None) and stored[
        "finishedAt"
    ] == clock.now()
