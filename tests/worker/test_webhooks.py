"""Webhook events and their delivery against a receiver on loopback: signatures, streaks, anomalies,
formats, retries with backoff, the delivery log, the network policy, and that none of it delays scheduling."""

import asyncio
import itertools
import json
from datetime import timedelta

import pytest
from aiohttp import web
from bson import ObjectId
from prometheus_client import REGISTRY

from executor.outcome import RunOutcome
from models.execution import ExecutionStatus
from tests.fakes import eventually
from tests.worker.conftest import executions_of, wait_for_status
from worker.notifier import Notifier
from worker.operations import WorkerOperations
from worker.webhook_delivery import Deliverer, PolicyResolver
from worker.webhook_payloads import verify_signature

HOOKS = "/api/workspaces/ws-a/webhooks"
QUEUED_AT = itertools.count()


@pytest.fixture
def settings(settings):
    # The receiver lives on loopback, which webhooks may reach only when the operator allows it.
    return settings.model_copy(
        update={
            "syncjobs_allowed_networks": "127.0.0.0/8",
            "webhook_backoff_seconds": 10,
            "webhook_max_attempts": 3,
        }
    )


class Receiver:
    def __init__(self):
        self.requests: list[tuple[dict, bytes]] = []
        self.statuses: list[int] = []
        self.hold: asyncio.Event | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        if self.hold is not None:
            await self.hold.wait()
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)

    def bodies(self) -> list[dict]:
        return [json.loads(body) for _, body in self.requests]


@pytest.fixture
async def receiver(aiohttp_server):
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    receiver.url = str(server.make_url("/hook"))
    return receiver


@pytest.fixture
async def hook(client, ws, receiver):
    async def create(**body):
        resp = await client.post(HOOKS, json={"url": receiver.url, **body}, headers=ws.headers)
        assert resp.status == 201, await resp.text()
        return await resp.json()

    return create


@pytest.fixture
def notifier(db, clock, settings):
    return Notifier(db, clock=clock, settings=settings)


@pytest.fixture
async def deliverer(db, clock, settings, secrets):
    deliverer = Deliverer(db, clock=clock, settings=settings, secrets=secrets)
    yield deliverer
    await deliverer.close()


async def finish(db, clock, job_id, status: str, duration_ms: int = 1000) -> dict:
    """A finished, committed execution of `job_id`, queued after every earlier one."""
    now = clock.now()
    queued = now - timedelta(hours=1) + timedelta(seconds=next(QUEUED_AT))
    doc = {
        "_id": ObjectId(),
        "jobId": job_id,
        "workspaceId": "ws-a",
        "trigger": "schedule",
        "attempt": 1,
        "status": status,
        "scheduledFor": queued,
        "queuedAt": queued,
        "startedAt": now - timedelta(milliseconds=duration_ms),
        "finishedAt": now,
        "durationMs": duration_ms,
        "error": None if status == "succeeded" else "boom",
        "outcomeCommitted": True,
    }
    await db.job_executions.insert_one(doc)
    return doc


async def deliver(notifier, deliverer) -> None:
    await notifier.run_once()
    await deliverer.run_once()
    await deliverer.settle()


async def test_a_finished_run_is_delivered_signed_and_logged(
    client, ws, db, clock, hook, receiver, notifier, deliverer
):
    created = await hook(events=["execution.succeeded"])
    job_id = ObjectId()
    execution = await finish(db, clock, job_id, "succeeded", 1234)
    await deliver(notifier, deliverer)
    [(headers, body)] = receiver.requests
    assert verify_signature(created["secret"], headers["X-Syncjobs-Signature"], body, clock.now())
    payload = json.loads(body)
    assert payload["event"] == "execution.succeeded" and headers["X-Syncjobs-Event"] == "execution.succeeded"
    assert payload["execution"]["id"] == str(execution["_id"]) and payload["execution"]["durationMs"] == 1234
    assert payload["id"] == headers["X-Syncjobs-Delivery"] and payload["workspaceId"] == "ws-a"
    # Replay protection: an old timestamp or a changed body fails verification.
    assert not verify_signature(
        created["secret"], headers["X-Syncjobs-Signature"], body, clock.now() + timedelta(minutes=6)
    )
    assert not verify_signature(created["secret"], headers["X-Syncjobs-Signature"], body + b" ", clock.now())
    log = await (await client.get(f"{HOOKS}/{created['id']}/deliveries", headers=ws.headers)).json()
    [entry] = log["items"]
    assert entry["status"] == "delivered" and entry["attempts"] == 1 and entry["lastStatusCode"] == 200
    assert entry["event"] == "execution.succeeded" and entry["executionId"] == str(execution["_id"])
    # Looked at once: a second pass sends nothing more.
    await deliver(notifier, deliverer)
    assert len(receiver.requests) == 1


@pytest.mark.parametrize("status", ["failed", "timed_out", "abandoned"])
async def test_each_failed_outcome_has_its_event(db, clock, hook, receiver, notifier, deliverer, status):
    await hook(events=[f"execution.{status}"])
    await finish(db, clock, ObjectId(), status)
    await deliver(notifier, deliverer)
    assert [body["event"] for body in receiver.bodies()] == [f"execution.{status}"]


async def test_job_failing_fires_once_per_streak_and_recovered_after_it(
    db, clock, hook, receiver, notifier, deliverer
):
    await hook(events=["job.failing", "job.recovered"], failureThreshold=2)
    job_id = ObjectId()
    for status in ["failed", "timed_out", "failed", "succeeded", "failed", "succeeded", "canceled"]:
        await finish(db, clock, job_id, status)
        await deliver(notifier, deliverer)
    events = [(body["event"], body["details"]) for body in receiver.bodies()]
    assert events == [
        ("job.failing", {"consecutiveFailures": 2, "threshold": 2}),
        ("job.recovered", {"failedRunsBefore": 3, "threshold": 2}),
    ]


async def test_each_webhook_has_its_own_threshold_default_three(
    db, clock, hook, receiver, notifier, deliverer
):
    await hook(events=["job.failing"])
    job_id = ObjectId()
    for _ in range(4):
        await finish(db, clock, job_id, "failed")
        await deliver(notifier, deliverer)
    [body] = receiver.bodies()
    assert body["details"] == {"consecutiveFailures": 3, "threshold": 3}


async def test_a_run_over_three_times_the_p95_is_a_duration_anomaly(
    db, clock, hook, receiver, notifier, deliverer
):
    await hook(events=["job.duration_anomaly"])
    job_id = ObjectId()
    for duration in [100] * 18 + [200] * 2:
        await finish(db, clock, job_id, "succeeded", duration)
    await finish(db, clock, job_id, "succeeded", 600)  # 3x the p95 (200): not over it
    await deliver(notifier, deliverer)
    assert receiver.requests == []
    await finish(db, clock, job_id, "succeeded", 601)
    await deliver(notifier, deliverer)
    [body] = receiver.bodies()
    assert body["event"] == "job.duration_anomaly" and body["details"]["p95Ms"] == 200


@pytest.mark.parametrize(("fmt", "key"), [("slack", "text"), ("discord", "content")])
async def test_slack_and_discord_formats_get_a_message(
    db, clock, hook, receiver, notifier, deliverer, fmt, key
):
    await hook(events=["execution.failed"], format=fmt)
    await finish(db, clock, ObjectId(), "failed")
    await deliver(notifier, deliverer)
    [body] = receiver.bodies()
    assert list(body) == [key] and "failed" in body[key] and "boom" in body[key]


async def test_a_failing_receiver_is_retried_with_backoff_then_given_up(
    client, ws, db, clock, hook, receiver, notifier, deliverer
):
    created = await hook(events=["execution.failed"])
    receiver.statuses = [500, 503, 500]
    await finish(db, clock, ObjectId(), "failed")
    await deliver(notifier, deliverer)
    delivery = await db.webhook_deliveries.find_one({})
    assert delivery["status"] == "pending" and delivery["attempts"] == 1 and delivery["lastStatusCode"] == 500
    assert delivery["nextAttemptAt"] == clock.now() + timedelta(seconds=10)
    await clock.advance(9)
    assert await deliverer.run_once() == 0  # not due yet
    await clock.advance(1)
    await deliver(notifier, deliverer)
    delivery = await db.webhook_deliveries.find_one({})
    assert delivery["attempts"] == 2 and delivery["nextAttemptAt"] == clock.now() + timedelta(seconds=20)
    await clock.advance(20)
    await deliver(notifier, deliverer)
    log = await (await client.get(f"{HOOKS}/{created['id']}/deliveries", headers=ws.headers)).json()
    [entry] = log["items"]
    assert entry["status"] == "failed" and entry["attempts"] == 3 and entry["lastError"] == "HTTP 500"
    assert len(receiver.requests) == 3
    # Every attempt signs anew with the same delivery id, so the receiver can tell a retry from a new event.
    assert len({headers["X-Syncjobs-Delivery"] for headers, _ in receiver.requests}) == 1


async def test_a_webhook_stored_pointing_inward_is_not_delivered(
    db, clock, settings, secrets, receiver, notifier
):
    """Even a document edited by hand (or allowed once, then the policy tightened) cannot reach loopback."""
    strict = Deliverer(
        db,
        clock=clock,
        settings=settings.model_copy(update={"syncjobs_allowed_networks": ""}),
        secrets=secrets,
    )
    await db.webhooks.insert_one(
        {
            "workspaceId": "ws-a",
            "url": secrets.seal(receiver.url),
            "secret": secrets.seal("whsec_x"),
            "events": ["execution.failed"],
            "format": "json",
            "failureThreshold": 3,
            "enabled": True,
            "version": 1,
        }
    )
    await finish(db, clock, ObjectId(), "failed")
    await deliver(notifier, strict)
    await strict.close()
    delivery = await db.webhook_deliveries.find_one({})
    assert delivery["status"] == "failed" and "not a public address" in delivery["lastError"]
    assert receiver.requests == []


async def test_names_resolving_inward_are_refused_at_connect_time():
    with pytest.raises(OSError, match="no address webhooks may reach"):
        await PolicyResolver([]).resolve("localhost", 80)


async def test_metrics_count_each_finished_execution_once_across_workers(db, clock, settings):
    def count(status):
        return REGISTRY.get_sample_value("syncjobs_executions_total", {"status": status}) or 0.0

    def histogram(name):
        return REGISTRY.get_sample_value(f"{name}_count") or 0.0

    before = (count("succeeded"), count("failed"), histogram("syncjobs_execution_duration_seconds"))
    lag_before = histogram("syncjobs_fire_lag_seconds")
    await finish(db, clock, ObjectId(), "succeeded")
    await finish(db, clock, ObjectId(), "failed")
    first, second = Notifier(db, clock=clock, settings=settings), Notifier(db, clock=clock, settings=settings)
    assert await first.run_once() + await second.run_once() == 2
    assert await first.run_once() == 0
    assert (count("succeeded"), count("failed")) == (before[0] + 1, before[1] + 1)
    assert histogram("syncjobs_execution_duration_seconds") == before[2] + 2
    assert histogram("syncjobs_fire_lag_seconds") == lag_before + 2


async def test_a_hanging_receiver_never_delays_scheduling(
    db, clock, settings, secrets, hook, receiver, workers, runner, add_job
):
    """End to end through a worker: three failed runs page, while the receiver holds every request open."""
    await hook(events=["execution.failed", "job.failing"])
    receiver.hold = asyncio.Event()
    runner.outcomes.extend(RunOutcome(ExecutionStatus.FAILED, error="source down") for _ in range(5))
    job = await add_job(retry={"maxAttempts": 1})  # every minute
    leader = await workers.start()
    operations = WorkerOperations(leader, db, clock=clock, settings=workers.settings, secrets=secrets)
    stop = asyncio.Event()
    task = asyncio.create_task(operations.run(stop))
    try:
        for minute in range(1, 5):
            await clock.advance(60, step=2)
            runs = await executions_of(db, job["_id"], trigger="schedule")
            assert len(runs) == minute  # every slot fired on time
            await wait_for_status(db, runs[-1]["_id"], "failed")
        await clock.advance(4, step=2)
        await eventually(lambda: len(receiver.requests) >= 4, message="the receiver to be called")
        assert all(not task.done() for task in operations.deliverer._sending)  # still hanging
        receiver.hold.set()
        await operations.deliverer.settle()
        # A request held past its claim is tried again (at least once); count deliveries, not requests.
        events = {
            headers["X-Syncjobs-Delivery"]: json.loads(body)["event"] for headers, body in receiver.requests
        }
        assert sorted(events.values()) == ["execution.failed"] * 4 + ["job.failing"]
    finally:
        receiver.hold.set()
        stop.set()
        await task


def test_the_readmes_receiver_snippet_verifies_our_signatures():
    import re
    import time
    from datetime import UTC, datetime
    from pathlib import Path

    from worker.webhook_payloads import signed_request

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    [snippet] = [block for block in re.findall(r"```python\n(.*?)```", readme, re.S) if "def verify" in block]
    namespace: dict = {}
    exec(snippet, namespace)
    payload = {"event": "job.failing", "workspaceId": "ws-a"}
    body, headers = signed_request("json", "d1", payload, "whsec_s", datetime.fromtimestamp(time.time(), UTC))
    assert namespace["verify"]("whsec_s", headers["X-Syncjobs-Signature"], body)
    assert not namespace["verify"]("whsec_other", headers["X-Syncjobs-Signature"], body)
    old = datetime.fromtimestamp(time.time() - 600, UTC)
    body, headers = signed_request("json", "d1", payload, "whsec_s", old)
    assert not namespace["verify"]("whsec_s", headers["X-Syncjobs-Signature"], body)
