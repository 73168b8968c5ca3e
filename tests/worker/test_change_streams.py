"""The change-stream feed's own logic (resume tokens, invalidation, hard errors), against a scripted
stand-in for a collection's watch(); the real server path is in tests/test_mongo_replica_set.py."""

import asyncio

from bson import ObjectId
from pymongo.errors import AutoReconnect, OperationFailure

from worker.change_feed import Change, PollingFeed, StreamFeed, open_feed


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
    refused = {"syncjobs": ScriptedCollection([], refuse=standalone)}
    feed = await open_feed(refused, clock=clock, poll_seconds=2, resync_seconds=60, since=None)
    assert isinstance(feed, PollingFeed)
