"""GET .../statistics?days=N over seeded executions."""

import itertools
from datetime import timedelta

from bson import ObjectId

from tests.api.helpers import create_job

SLOTS = itertools.count()


def execution(job_id, workspace_id, queued_at, status, duration_ms=None, written=None):
    doc = {
        "_id": ObjectId(),
        "jobId": job_id,
        "workspaceId": workspace_id,
        "trigger": "schedule",
        "scheduledFor": queued_at - timedelta(seconds=next(SLOTS)),  # unique per job, as slots are
        "attempt": 1,
        "status": status,
        "queuedAt": queued_at,
        "durationMs": duration_ms,
        "stats": {},
    }
    if written is not None:
        doc["stats"] = {
            "entities": {"customers": {"read": 9, "written": written[0]}, "orders": {"written": written[1]}}
        }
    return doc


async def seed(db, clock, job_id, other_job_id):
    now = clock.now()  # 2030-01-07 12:00 UTC
    today, yesterday = now - timedelta(hours=1), now - timedelta(days=1)
    docs = [
        *(
            execution(job_id, "ws-a", today, "succeeded", 100 * i, (i, 1)) for i in range(1, 11)
        ),  # 100..1000 ms
        execution(job_id, "ws-a", today, "failed", 5000),
        execution(job_id, "ws-a", yesterday, "timed_out", 9000),
        execution(job_id, "ws-a", yesterday, "skipped"),
        execution(job_id, "ws-a", yesterday, "running"),
        execution(other_job_id, "ws-a", yesterday, "succeeded", 50, (2, 0)),
        # Outside the period, and another workspace: never counted.
        execution(job_id, "ws-a", now - timedelta(days=40), "failed", 1),
        execution(ObjectId(), "ws-b", today, "failed", 7),
    ]
    await db.job_executions.insert_many(docs)


async def test_workspace_statistics_count_rate_percentiles_records_and_days(client, ws, db, clock):
    job = await create_job(client, ws)
    other = await create_job(client, ws, name="other")
    await seed(db, clock, ObjectId(job["id"]), ObjectId(other["id"]))
    resp = await client.get("/api/workspaces/ws-a/statistics?days=30", headers=ws.headers)
    assert resp.status == 200
    body = await resp.json()
    assert (
        body["days"] == 30 and body["to"] == "2030-01-07T12:00:00Z" and body["from"] == "2029-12-09T00:00:00Z"
    )
    assert body["counts"] == {"succeeded": 11, "failed": 1, "timed_out": 1, "skipped": 1, "running": 1}
    assert body["total"] == 15
    assert body["successRate"] == round(11 / 13, 4)
    durations = sorted([100 * i for i in range(1, 11)] + [5000, 9000, 50])
    assert body["durationMs"] == {"p50": durations[6], "p95": 9000, "max": 9000}
    assert body["recordsWritten"] == sum(range(1, 11)) + 10 + 2
    assert len(body["perDay"]) == 30 and body["perDay"][-1]["date"] == "2030-01-07"
    assert body["perDay"][-1]["counts"] == {"succeeded": 10, "failed": 1}
    assert body["perDay"][-1]["durationMs"] == {"p50": 600, "p95": 5000}
    assert body["perDay"][-2]["counts"] == {"timed_out": 1, "skipped": 1, "running": 1, "succeeded": 1}
    assert body["perDay"][0] == {"date": "2029-12-09", "counts": {}, "durationMs": {"p50": None, "p95": None}}


async def test_job_statistics_cover_only_that_job(client, ws, db, clock):
    job = await create_job(client, ws)
    other = await create_job(client, ws, name="other")
    await seed(db, clock, ObjectId(job["id"]), ObjectId(other["id"]))
    resp = await client.get(f"{ws.jobs}/{job['id']}/statistics?days=7", headers=ws.headers)
    body = await resp.json()
    assert body["counts"] == {"succeeded": 10, "failed": 1, "timed_out": 1, "skipped": 1, "running": 1}
    assert body["recordsWritten"] == sum(range(1, 11)) + 10 and len(body["perDay"]) == 7
    assert body["durationMs"]["max"] == 9000


async def test_empty_period_has_no_rate_and_no_percentiles(client, ws):
    body = await (await client.get("/api/workspaces/ws-a/statistics?days=1", headers=ws.headers)).json()
    assert body["total"] == 0 and body["successRate"] is None and body["recordsWritten"] == 0
    assert body["durationMs"] == {"p50": None, "p95": None, "max": None} and len(body["perDay"]) == 1


async def test_statistics_of_another_workspace_or_its_job_are_refused(client, ws, token_for):
    job = await create_job(client, ws)
    intruder = await token_for("ws-b")
    assert (await client.get("/api/workspaces/ws-a/statistics", headers=intruder)).status == 403
    resp = await client.get(f"/api/workspaces/ws-b/sync-jobs/{job['id']}/statistics", headers=intruder)
    assert resp.status == 404


async def test_days_out_of_range_is_422(client, ws):
    for days in ("0", "367", "abc"):
        resp = await client.get(f"/api/workspaces/ws-a/statistics?days={days}", headers=ws.headers)
        assert resp.status == 422 and (await resp.json())["error"]["details"][0]["field"] == "days"
