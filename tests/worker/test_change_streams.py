"""The change-stream feed's own logic (resume tokens, invalidation, hard errors), against a scripted
stand-in for a collection's watch(); the real server path is in tests/test_mongo_replica_set.py."""

import asyncio

import pytest
from bson import ObjectId
from mongomock_motor import AsyncMongoMockClient
from pymongo.errors import AutoReconnect, OperationFailure
from structlog.testing import capture_logs

from worker.change_feed import Change, ChangeStreamsRequired, PollingFeed, StreamFeed, open_feed


class ScriptedStream:
    def __init__(self, events, error=None):
        self._events = list(events)
        self._error = error
        self.resume_token = None

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        return False

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self._events:
            event = self._events.pop(0)
            self.resume_token = event["_id"]
            return event
        if self._error is StopAsyncIteration:
            raise StopAsyncIteration
        if self._error is not None:
            raise self._error
        await asyncio.Event().wait()  # an open stream with nothing new

    async def close(self):
        pass


class ScriptedCollection:
    """Each watch() opens the next scripted stream and records the token it resumed after."""

    def __init__(self, scripts, refuse=None):
        self._scripts = list(scripts)
        self._refuse = refuse
        self.resumed_after = []

    async def watch(self, pipeline, resume_after=None):
        if self._refuse is not None:
            raise self._refuse
        self.resumed_after.append(resume_after)
        events, error = self._scripts.pop(0) if self._scripts else ([], None)
        return ScriptedStream(events, error)


def refusing(refusal: Exception) -> dict:
    """A database whose watch() raises `refusal`; the jobs' change mark, which a polling feed reads when it
    opens, is an in-memory one."""
    return {
        "syncjobs": ScriptedCollection([], refuse=refusal),
        "change_marks": AsyncMongoMockClient()["x"]["change_marks"],
    }


def job_event(token: str, job_id: ObjectId, kind: str = "update") -> dict:
    return {"_id": {"_data": token}, "operationType": kind, "documentKey": {"_id": job_id}}


async def collect(feed: StreamFeed, count: int) -> list[Change]:
    changes = feed.changes()
    try:
        return [await asyncio.wait_for(anext(changes), 2) for _ in range(count)]
    finally:
        await changes.aclose()


async def test_a_resumable_error_resumes_after_the_last_token_without_a_resync():
    a, b = ObjectId(), ObjectId()
    jobs = ScriptedCollection(
        [
            ([job_event("t1", a)], AutoReconnect("primary stepped down")),
            ([job_event("t2", b, "delete")], None),
        ]
    )
    feed = StreamFeed({"syncjobs": jobs, "job_executions": ScriptedCollection([])}, retry_seconds=0.01)
    assert await collect(feed, 2) == [Change("job", a), Change("job", b)]
    assert jobs.resumed_after == [None, {"_data": "t1"}]


async def test_history_lost_reopens_fresh_and_asks_for_a_full_resync():
    a = ObjectId()
    lost = OperationFailure("resume point lost", code=286)
    jobs = ScriptedCollection([([job_event("t1", a)], lost), ([job_event("t9", a)], None)])
    feed = StreamFeed({"syncjobs": jobs, "job_executions": ScriptedCollection([])}, retry_seconds=0.01)
    assert await collect(feed, 3) == [Change("job", a), Change("resync"), Change("job", a)]
    assert jobs.resumed_after == [None, None]


async def test_an_invalidated_stream_is_reopened_with_a_resync():
    a = ObjectId()
    invalidate = {"_id": {"_data": "t2"}, "operationType": "invalidate"}
    jobs = ScriptedCollection([([job_event("t1", a), invalidate], None), ([job_event("t3", a)], None)])
    feed = StreamFeed({"syncjobs": jobs, "job_executions": ScriptedCollection([])}, retry_seconds=0.01)
    assert await collect(feed, 3) == [Change("job", a), Change("resync"), Change("job", a)]
    assert jobs.resumed_after == [None, None]


async def test_execution_events_wake_the_dispatcher():
    executions = ScriptedCollection(
        [([{"_id": {"_data": "e1"}, "operationType": "insert", "documentKey": {"_id": ObjectId()}}], None)]
    )
    feed = StreamFeed({"syncjobs": ScriptedCollection([]), "job_executions": executions}, retry_seconds=0.01)
    assert await collect(feed, 1) == [Change("executions")]


async def test_open_feed_prefers_change_streams_and_falls_back_when_the_server_has_none(clock):
    supported = {"syncjobs": ScriptedCollection([([], None)]), "job_executions": ScriptedCollection([])}
    feed = await open_feed(supported, clock=clock, poll_seconds=2, resync_seconds=60, since=None)
    assert isinstance(feed, StreamFeed)
    standalone = OperationFailure("The $changeStream stage is only supported on replica sets", code=40573)
    refused = refusing(standalone)
    feed = await open_feed(refused, clock=clock, poll_seconds=2, resync_seconds=60, since=None)
    assert isinstance(feed, PollingFeed)


UNAVAILABLE_ANSWERS = [
    OperationFailure("The $changeStream stage is only supported on replica sets", code=40573),
    OperationFailure("Unrecognized pipeline stage name: '$changeStream'", code=40324),
    OperationFailure("command not supported", code=115),
    OperationFailure("Change streams are not enabled on this cluster", code=136),
    # mongoeco and others answer with no code at all.
    OperationFailure("Unsupported aggregation stage: $changeStream"),
]


@pytest.mark.parametrize("answer", UNAVAILABLE_ANSWERS, ids=lambda e: str(e.code or "no-code"))
async def test_every_way_a_server_says_it_has_no_change_streams_switches_to_polling(clock, answer):
    refused = refusing(answer)
    feed = await open_feed(refused, clock=clock, poll_seconds=2, resync_seconds=60, since=None)
    assert isinstance(feed, PollingFeed) and "no change streams" in feed.reason


@pytest.mark.parametrize(
    "bug", [TypeError("oops"), AttributeError("oops"), OperationFailure("auth", code=13)]
)
async def test_a_bug_of_ours_or_another_refusal_is_not_taken_for_no_change_streams(clock, bug):
    broken = {"syncjobs": ScriptedCollection([], refuse=bug)}
    with pytest.raises(type(bug)):
        await open_feed(broken, clock=clock, poll_seconds=2, resync_seconds=60, since=None)


async def test_the_in_memory_database_polls_because_it_has_no_watch(clock):
    feed = await open_feed(
        AsyncMongoMockClient()["x"], clock=clock, poll_seconds=2, resync_seconds=60, since=None
    )
    assert isinstance(feed, PollingFeed) and "no change streams" in feed.reason


async def test_reload_mode_polling_never_opens_a_stream(clock):
    never = refusing(AssertionError("watch() was called"))
    feed = await open_feed(never, clock=clock, poll_seconds=2, resync_seconds=60, since=None, mode="polling")
    assert isinstance(feed, PollingFeed) and feed.reason == "RELOAD_MODE=polling"


async def test_reload_mode_change_streams_refuses_a_server_without_them(clock):
    refused = {"syncjobs": ScriptedCollection([], refuse=UNAVAILABLE_ANSWERS[0])}
    with pytest.raises(ChangeStreamsRequired, match="RELOAD_MODE=auto or polling"):
        await open_feed(
            refused, clock=clock, poll_seconds=2, resync_seconds=60, since=None, mode="change_streams"
        )


async def test_a_follower_error_that_is_not_pymongos_is_logged_and_resynced():
    a = ObjectId()
    jobs = ScriptedCollection(
        [([job_event("t1", a)], RuntimeError("decoder bug")), ([job_event("t2", a)], None)]
    )
    feed = StreamFeed({"syncjobs": jobs, "job_executions": ScriptedCollection([])}, retry_seconds=0.01)
    with capture_logs() as logs:
        assert await collect(feed, 3) == [Change("job", a), Change("resync"), Change("job", a)]
    reopened = [entry for entry in logs if entry["event"] == "change_stream_reopened"]
    assert len(reopened) == 1 and "decoder bug" in reopened[0]["error"]


def test_a_follower_that_keeps_failing_waits_longer_each_time_up_to_a_cap():
    feed = StreamFeed({}, retry_seconds=1.0)
    delays = [feed.retry_delay(failures) for failures in range(1, 10)]
    assert delays[:4] == [1.0, 2.0, 4.0, 8.0]
    assert delays == sorted(delays) and delays[-1] == StreamFeed.MAX_RETRY_SECONDS


async def test_a_server_without_change_streams_keeps_its_leader_who_polls(workers, add_job):
    """The wire backend is such a server (a code-less refusal); so is the in-memory one (no watch)."""
    job = await add_job()
    with capture_logs() as logs:
        leader = await workers.start()
        await workers.clock.advance(70)
    events = [entry["event"] for entry in logs]
    assert events.count("lock_acquired") == 1 and "leadership_ended_by_error" not in events
    assert leader.leading.is_set() and leader.reload_mode == "polling"
    assert events.count("change_streams_unsupported_polling") == 1
    assert await workers.db.job_executions.count_documents({"jobId": job["_id"]}) == 1


class ScriptedDatabase:
    def __init__(self, **collections):
        self._collections = collections

    def __getitem__(self, name):
        return self._collections[name]


async def test_every_worker_wakes_on_a_queued_run_seen_by_change_stream():
    from worker.change_feed import watch_queue

    inserted = {"_id": {"_data": "e1"}, "operationType": "insert", "documentKey": {"_id": ObjectId()}}
    db = ScriptedDatabase(
        syncjobs=ScriptedCollection([]), job_executions=ScriptedCollection([([inserted], None)])
    )
    woken = asyncio.Event()
    watching = asyncio.create_task(watch_queue(db, woken.set))
    try:
        await asyncio.wait_for(woken.wait(), 2)
    finally:
        watching.cancel()


async def test_without_change_streams_the_queue_watch_leaves_it_to_the_poll():
    from worker.change_feed import watch_queue

    woken = asyncio.Event()
    db = AsyncMongoMockClient()["no_streams"]
    await asyncio.wait_for(watch_queue(db, woken.set), 2)  # returns at once: nothing to follow
    assert not woken.is_set()
