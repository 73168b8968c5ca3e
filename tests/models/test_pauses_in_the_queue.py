"""A pause holds through the queue, not through a read at each launch: the pause ends what it finds queued,
and every write that leaves a run queued reads the pauses after it. Each test here is a write that races a
pause: the pause document is already written when the run is queued, as if the queuer had looked just
before it landed."""

from datetime import timedelta

import pytest
from bson import ObjectId

from models.execution import Trigger, new_execution_document
from models.execution_store import ExecutionStore
from models.scheduler_control import Paused, SchedulerControl

JOB = {"_id": ObjectId(), "workspaceId": "ws-a"}
OTHER = {"_id": ObjectId(), "workspaceId": "ws-b"}


def store_of(db) -> ExecutionStore:
    return ExecutionStore(db, retention_days=30)


def slot(job, clock, minutes: int = 0):
    return new_execution_document(
        job=job,
        trigger=Trigger.SCHEDULE,
        scheduled_for=clock.now() + timedelta(minutes=minutes),
        now=clock.now(),
    )


async def pause(db, clock, workspace_id: str | None = None) -> None:
    """Only the pause document: the sweep that follows it in the API has already gone by."""
    await SchedulerControl(db).set_paused(True, now=clock.now(), by="admin", workspace_id=workspace_id)


async def status_of(db, doc) -> dict:
    return await db.job_executions.find_one({"_id": doc["_id"]})


async def test_slots_fired_as_a_workspace_pause_lands_end_skipped_and_other_workspaces_stay_queued(db, clock):
    store = store_of(db)
    await pause(db, clock, "ws-a")
    mine, theirs = slot(JOB, clock), slot(OTHER, clock)
    await store.queue([mine, theirs])
    stored = await status_of(db, mine)
    assert (stored["status"], stored["reason"], stored["pausedBy"]) == ("skipped", "paused", "workspace")
    assert stored["finishedAt"] == clock.now() and stored["startedAt"] is None
    assert (await status_of(db, theirs))["status"] == "queued"


async def test_a_retry_queued_under_a_global_pause_ends_skipped_and_is_not_handed_to_the_dispatcher(
    db, clock
):
    store = store_of(db)
    failed = slot(JOB, clock)
    await pause(db, clock)
    retry = await store.queue_retry(
        failed, JOB, now=clock.now(), run_after=clock.now() + timedelta(minutes=1)
    )
    assert retry is None
    [stored] = await db.job_executions.find({"retryOf": failed["_id"]}).to_list(None)
    assert (stored["status"], stored["pausedBy"]) == ("skipped", "scheduler")


async def test_a_manual_run_queued_as_the_pause_lands_is_refused_and_recorded_skipped(db, clock):
    store = store_of(db)
    await pause(db, clock, "ws-a")
    with pytest.raises(Paused) as refused:
        await store.queue_manual_run({**JOB, "overlapPolicy": "skip"}, clock.now())
    execution_id = ObjectId(refused.value.details["executionId"])
    stored = await db.job_executions.find_one({"_id": execution_id})
    assert (stored["status"], stored["pausedBy"]) == ("skipped", "workspace")
    # The refused run blocks nothing: once resumed, the next request queues.
    await SchedulerControl(db).set_paused(False, now=clock.now(), by="admin", workspace_id="ws-a")
    again = await store.queue_manual_run({**JOB, "overlapPolicy": "skip"}, clock.now() + timedelta(seconds=1))
    assert (await status_of(db, again))["status"] == "queued"


async def test_a_claim_handed_back_during_a_pause_does_not_go_back_to_the_queue(db, clock):
    store = store_of(db)
    run = slot(JOB, clock)
    await store.queue([run])
    won, started = await store.claim(run, owner="host:1:w1", now=clock.now())
    assert won and started["status"] == "running"
    await pause(db, clock)
    # The sweep saw it running; handed back (its workspace was at the fleet's cap), it is held to the pause.
    assert await store.skip_queued_while_paused(None, clock.now()) == 0
    await store.hand_back(started, owner="host:1:w1", now=clock.now())
    assert (await status_of(db, run))["status"] == "skipped"


async def test_the_sweep_ends_every_queued_run_of_its_scope_retries_waiting_for_their_time_included(
    db, clock
):
    store = store_of(db)
    now_due, later, theirs = slot(JOB, clock), slot(JOB, clock, minutes=1), slot(OTHER, clock)
    later["runAfter"] = clock.now() + timedelta(minutes=5)
    await store.queue([now_due, later, theirs])
    await pause(db, clock, "ws-a")
    assert await store.skip_queued_while_paused("ws-a", clock.now()) == 2
    assert [(await status_of(db, doc))["status"] for doc in (now_due, later, theirs)] == [
        "skipped",
        "skipped",
        "queued",
    ]


async def test_nothing_is_skipped_while_nothing_is_paused(db, clock):
    store = store_of(db)
    runs = [slot(JOB, clock), slot(OTHER, clock)]
    assert await store.queue(runs) == runs
    assert [(await status_of(db, doc))["status"] for doc in runs] == ["queued", "queued"]


async def test_a_pause_whose_sweep_never_came_holds_from_the_first_run_queued_in_its_scope(db, clock):
    # The API died between writing the pause and ending what was queued: the run queued before it is still
    # queued. The next run queued in that workspace ends both; another workspace's run is left alone.
    store = store_of(db)
    before, theirs = slot(JOB, clock), slot(OTHER, clock)
    await store.queue([before, theirs])
    await pause(db, clock, "ws-a")
    await store.queue([slot(JOB, clock, minutes=1)])
    assert (await status_of(db, before))["pausedBy"] == "workspace"
    assert (await status_of(db, theirs))["status"] == "queued"
    assert await db.job_executions.count_documents({"workspaceId": "ws-a", "status": "queued"}) == 0
