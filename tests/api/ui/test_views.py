"""The dashboard's JSON views: job rows with recent runs, the live stream of them, the schedule preview."""

import asyncio
import json
from datetime import UTC, datetime, timedelta

from bson import ObjectId

from tests.api.helpers import create_job

DASHBOARD = "/api/workspaces/ws-a/dashboard"


async def add_run(db, job: dict, status: str, queued_at: datetime, duration_ms: int | None = 1000) -> None:
    await db.job_executions.insert_one(
        {
            "_id": ObjectId(),
            "jobId": ObjectId(job["id"]),
            "workspaceId": "ws-a",
            "trigger": "schedule",
            "scheduledFor": queued_at,
            "attempt": 1,
            "status": status,
            "queuedAt": queued_at,
            "startedAt": queued_at,
            "finishedAt": queued_at + timedelta(milliseconds=duration_ms or 0),
            "durationMs": duration_ms,
        }
    )


async def test_job_rows_carry_the_schedule_in_words_the_next_fire_and_the_last_20_runs(client, ws, db, clock):
    clock.set(datetime(2030, 1, 7, 12, 0, tzinfo=UTC))  # a Monday
    job = await create_job(client, ws, schedule={"cron": "0 9 * * 1-5", "timezone": "America/New_York"})
    start = datetime(2030, 1, 1, tzinfo=UTC)
    statuses = ["succeeded"] * 15 + ["failed"] * 3 + ["skipped", "canceled"] + ["succeeded"] * 5
    for i, status in enumerate(statuses):
        await add_run(db, job, status, start + timedelta(hours=i))
    resp = await client.get(f"{DASHBOARD}/jobs", headers=ws.headers)
    assert resp.status == 200
    [row] = (await resp.json())["items"]
    assert row["job"]["id"] == job["id"]
    assert row["scheduleText"] == "At 09:00, Monday through Friday, America/New_York"
    assert row["nextFireAt"] == "2030-01-07T14:00:00Z"  # 09:00 EST
    assert len(row["recentRuns"]) == 20
    assert [run["status"] for run in row["recentRuns"]] == list(reversed(statuses))[:20]
    # The last 20 are 15 succeeded, 3 failed, a skip and a cancel; the skip and the cancel count as neither.
    assert row["successRate"] == 15 / 18


async def test_a_disabled_job_has_no_next_fire_and_a_new_one_no_success_rate(client, ws):
    await create_job(client, ws, enabled=False)
    [row] = (await (await client.get(f"{DASHBOARD}/jobs", headers=ws.headers)).json())["items"]
    assert row["nextFireAt"] is None
    assert row["recentRuns"] == [] and row["successRate"] is None


async def test_rows_of_another_workspace_are_refused(client, ws, token_for):
    await create_job(client, ws)
    intruder = await token_for("ws-b")
    for view in ("jobs", "stream", "schedule-preview?cron=*+*+*+*+*"):
        assert (await client.get(f"{DASHBOARD}/{view}", headers=intruder)).status == 403
        assert (await client.get(f"{DASHBOARD}/{view}")).status == 401


async def test_runs_of_another_workspace_never_appear_in_a_row(client, ws, db):
    job = await create_job(client, ws)
    await db.job_executions.insert_one(
        {"_id": ObjectId(), "jobId": ObjectId(job["id"]), "workspaceId": "ws-b", "status": "failed",
         "trigger": "manual", "queuedAt": datetime(2030, 1, 1, tzinfo=UTC)}
    )  # fmt: skip
    [row] = (await (await client.get(f"{DASHBOARD}/jobs", headers=ws.headers)).json())["items"]
    assert row["recentRuns"] == []


async def test_preview_puts_a_valid_schedule_in_words_with_its_next_five_fires(client, ws, clock):
    clock.set(datetime(2030, 3, 9, 12, 0, tzinfo=UTC))
    resp = await client.get(
        f"{DASHBOARD}/schedule-preview",
        params={"cron": "30 2 * * *", "timezone": "America/New_York"},
        headers=ws.headers,
    )
    assert resp.status == 200
    body = await resp.json()
    assert body["description"] == "At 02:30, America/New_York"
    # 02:30 does not exist on 2030-03-10 in New York (spring forward): skipped, as the worker skips it.
    assert body["nextFireTimes"][:2] == ["2030-03-11T06:30:00Z", "2030-03-12T06:30:00Z"]
    assert len(body["nextFireTimes"]) == 5


async def test_preview_of_an_invalid_schedule_names_the_fields_as_a_save_would(client, ws):
    query = {"cron": "61 * * * *", "timezone": "Mars/Olympus"}
    resp = await client.get(f"{DASHBOARD}/schedule-preview", params=query, headers=ws.headers)
    assert resp.status == 422
    details = (await resp.json())["error"]["details"]
    assert [d["field"] for d in details] == ["schedule.cron", "schedule.timezone"]
    assert "minute" in details[0]["message"] and "Mars/Olympus" in details[1]["message"]
    long = await client.get(f"{DASHBOARD}/schedule-preview", params={"cron": "*" * 500}, headers=ws.headers)
    assert long.status == 422


async def read_event(response) -> tuple[str, dict]:
    name, data = None, []
    while True:
        line = (await response.content.readline()).decode()
        assert line, "the stream ended"
        line = line.rstrip("\n")
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif line == "" and data:
            return name, json.loads("\n".join(data))


async def test_stream_sends_the_rows_at_once_and_again_when_a_run_is_queued(client, ws, clock):
    job = await create_job(client, ws)
    response = await client.get(f"{DASHBOARD}/stream", headers=ws.headers)
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/event-stream")
    name, first = await read_event(response)
    assert name == "jobs" and first["items"][0]["recentRuns"] == []
    assert (await client.post(f"{ws.jobs}/{job['id']}/run", headers=ws.headers)).status == 202
    await clock.advance(1)
    name, second = await read_event(response)
    assert [run["status"] for run in second["items"][0]["recentRuns"]] == ["queued"]
    # Past its lifetime the stream ends by itself (the page reconnects), with only heartbeats till then.
    await clock.advance(11 * 60, step=60)
    rest = await asyncio.wait_for(response.content.read(), 5)
    assert set(rest.split(b"\n\n")) <= {b": still here", b""}
