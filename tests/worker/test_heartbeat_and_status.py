"""Heartbeats in `workers`, the worker's status server (/healthz, /readyz, /metrics) and its gauges."""

import asyncio

import aiohttp
from bson import ObjectId
from prometheus_client import REGISTRY
from pymongo.errors import AutoReconnect

from models.scheduler_status import scheduler_status
from tests.fakes import eventually
from tests.worker.conftest import lose_and_regain
from worker.heartbeat import Heartbeat
from worker.operations import WorkerOperations


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_heartbeats_name_the_leader_its_term_reload_mode_runs_and_load(
    workers, db, clock, runner, add_job
):
    from tests.worker.test_executions import start_run

    runner.hold = True
    job = await add_job(schedule={"cron": "0 0 1 1 *", "timezone": "UTC"})
    leader = await workers.start("w1")
    execution = await start_run(db, clock, job)
    await clock.advance(2)
    await eventually(lambda: execution["_id"] in leader.launcher.running, message="the run to start")
    labelled = workers.settings.model_copy(update={"worker_labels": "gpu"})
    standby = await workers.start("w2", settings=labelled)
    for scheduler, settings in ((leader, workers.settings), (standby, labelled)):
        assert await Heartbeat(scheduler, db, clock=clock, settings=settings).beat()
    doc = await db.workers.find_one({"_id": "host:1:w1"})
    assert doc["leading"] is True and doc["term"] == 1 and doc["reloadMode"] == "polling"
    assert (
        doc["running"] == [execution["_id"]] and doc["jobsLoaded"] == 1 and doc["heartbeatAt"] == clock.now()
    )
    assert doc["expireAt"] > doc["heartbeatAt"] and doc["pid"] > 0 and doc["host"]
    view = await scheduler_status(db, now=clock.now(), renew_seconds=10)
    assert view["leader"]["owner"] == "host:1:w1" and view["reloadMode"] == "polling"
    assert [(w["workerId"], w["leading"]) for w in view["workers"]] == [
        ("host:1:w1", True),
        ("host:1:w2", False),
    ]
    assert view["workers"][0]["running"] == [str(execution["_id"])]
    assert [(w["capacity"], w["labels"]) for w in view["workers"]] == [(4, []), (4, ["gpu"])]


async def status(port: int, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}{path}") as resp:
        return resp.status, await resp.text()


async def test_status_server_answers_health_readiness_and_metrics(workers, db, clock, worker_settings):
    settings = worker_settings.model_copy(update={"worker_status_port": 0})
    leader = await workers.start("w1")
    operations = WorkerOperations(leader, db, clock=clock, settings=settings)
    stop = asyncio.Event()
    task = asyncio.create_task(operations.run(stop))
    try:
        await eventually(lambda: operations.heartbeat.last_ok is not None, message="a first heartbeat")
        port = operations.status_port
        assert (await status(port, "/healthz"))[0] == 200
        code, body = await status(port, "/readyz")
        assert code == 200 and '"role": "leader"' in body
        code, body = await status(port, "/metrics")
        assert code == 200
        assert "syncjobs_worker_leader 1.0" in body and "syncjobs_leader_term 1.0" in body
        assert "syncjobs_executions_queued" in body and "syncjobs_lease_renewal_failures_total" in body

        # The database stops taking heartbeats: not ready once two beats have failed; ready again after.
        workers_collection = operations.heartbeat._workers  # the handle the heartbeat writes through
        update_one = workers_collection.update_one

        async def unreachable(*args, **kwargs):
            raise AutoReconnect("cut off")

        workers_collection.update_one = unreachable
        await clock.advance(settings.renew_seconds * 2 + 2)
        code, body = await status(port, "/readyz")
        assert code == 503 and "heartbeat" in body
        assert (await status(port, "/healthz"))[0] == 200  # alive all the same
        workers_collection.update_one = update_one
        await clock.advance(settings.renew_seconds + 1)
        assert (await status(port, "/readyz"))[0] == 200
    finally:
        stop.set()
        await task
    # A clean stop takes the worker off the list.
    assert await db.workers.count_documents({}) == 0


async def test_a_standby_reports_ready_and_not_leading(workers, db, clock):
    await workers.start("w1")
    standby = await workers.start("w2")
    heartbeat = Heartbeat(standby, db, clock=clock, settings=workers.settings)
    assert await heartbeat.beat()
    assert heartbeat.connected(clock.now())
    assert sample("syncjobs_worker_leader") == 0 and sample("syncjobs_leader_term") == 0


async def test_failed_lease_renewals_are_counted(workers):
    leader = await workers.start("w1")
    before = sample("syncjobs_lease_renewal_failures_total")
    await lose_and_regain(workers, leader)
    assert sample("syncjobs_lease_renewal_failures_total") >= before + 2


async def test_queued_executions_are_a_gauge_the_leader_keeps(workers, db, clock, add_job):
    from datetime import timedelta

    leader = await workers.start("w1")
    job = await add_job(schedule={"cron": "0 0 1 1 *", "timezone": "UTC"})
    later = clock.now() + timedelta(hours=1)
    await db.job_executions.insert_many(
        [
            {
                "_id": ObjectId(),
                "jobId": job["_id"],
                "workspaceId": "ws-a",
                "status": "queued",
                "runAfter": later,
                "scheduledFor": later,
                "attempt": attempt,
                "queuedAt": clock.now(),
            }
            for attempt in (1, 2)
        ]
    )
    assert await Heartbeat(leader, db, clock=clock, settings=workers.settings).beat()
    assert sample("syncjobs_executions_queued") == 2
