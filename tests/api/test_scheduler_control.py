"""GET /api/admin/scheduler, pause and resume (everywhere and per workspace), refused manual runs."""

from datetime import timedelta

from bson import ObjectId

from models.scheduler_control import SchedulerControl
from tests.api.helpers import create_job

ADMIN = "/api/admin/scheduler"


async def test_scheduler_view_is_refused_without_a_token_and_to_a_workspace_token(client, token_for):
    assert (await client.get(ADMIN)).status == 401
    resp = await client.get(ADMIN, headers=await token_for("ws-a"))
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "forbidden"
    for action in ("pause", "resume"):
        assert (await client.post(f"{ADMIN}/{action}", headers=await token_for("ws-a"))).status == 403


async def test_scheduler_view_shows_the_lease_live_workers_and_the_next_fire_times(
    client, db, clock, token_for
):
    now = clock.now()
    await db.worker_locks.insert_one(
        {
            "_id": "sync-worker",
            "owner": "h1:7:aaaa",
            "term": 4,
            "acquiredAt": now,
            "heartbeatAt": now,
            "expiresAt": now + timedelta(seconds=20),
        }
    )
    running = ObjectId()
    await db.workers.insert_many(
        [
            {
                "_id": "h1:7:aaaa",
                "host": "h1",
                "pid": 7,
                "version": "0.1.0",
                "heartbeatAt": now - timedelta(seconds=3),
                "leading": True,
                "term": 4,
                "reloadMode": "change_streams",
                "jobsLoaded": 2,
                "running": [running],
            },
            {
                "_id": "h2:8:bbbb",
                "host": "h2",
                "pid": 8,
                "heartbeatAt": now,
                "reloadMode": None,
                "running": [],
            },
            # A heartbeat the TTL monitor has not deleted yet, but long stale: not a worker any more.
            {"_id": "h3:9:cccc", "host": "h3", "pid": 9, "heartbeatAt": now - timedelta(hours=1)},
        ]
    )
    for index in range(25):
        await db.syncjobs.insert_one(
            {
                "workspaceId": f"ws-{index % 3}",
                "name": f"job {index}",
                "enabled": index != 0,
                "nextRunAt": now + timedelta(minutes=25 - index),
            }
        )
    resp = await client.get(ADMIN, headers=await token_for(admin=True))
    assert resp.status == 200
    body = await resp.json()
    assert body["leader"] == {
        "owner": "h1:7:aaaa",
        "term": 4,
        "expiresAt": (now + timedelta(seconds=20)).isoformat().replace("+00:00", "Z"),
        "heartbeatAt": now.isoformat().replace("+00:00", "Z"),
    }
    assert body["paused"] is False and body["reloadMode"] == "change_streams" and body["jobsLoaded"] == 2
    assert [(w["workerId"], w["leading"]) for w in body["workers"]] == [
        ("h1:7:aaaa", True),
        ("h2:8:bbbb", False),
    ]
    assert body["workers"][0]["running"] == [str(running)] and body["workers"][0]["version"] == "0.1.0"
    times = [item["at"] for item in body["nextFireTimes"]]
    assert len(times) == 20 and times == sorted(times)
    assert {item["workspaceId"] for item in body["nextFireTimes"]} == {"ws-0", "ws-1", "ws-2"}
    assert "job 0" not in {item["name"] for item in body["nextFireTimes"]}  # disabled


async def test_an_expired_lease_names_no_leader(client, db, clock, token_for):
    await db.worker_locks.insert_one(
        {
            "_id": "sync-worker",
            "owner": "h1:7:aaaa",
            "term": 2,
            "expiresAt": clock.now() - timedelta(seconds=1),
        }
    )
    body = await (await client.get(ADMIN, headers=await token_for(admin=True))).json()
    assert body["leader"] is None and body["workers"] == [] and body["jobsLoaded"] == 0


async def test_pause_refuses_manual_runs_with_409_paused_and_resume_allows_them(client, ws, token_for):
    admin = await token_for(admin=True)
    job = await create_job(client, ws)
    resp = await client.post(f"{ADMIN}/pause", headers=admin)
    assert resp.status == 200 and (await resp.json())["paused"] is True
    resp = await client.post(f"{ws.jobs}/{job['id']}/run", headers=ws.headers)
    assert resp.status == 409
    error = (await resp.json())["error"]
    assert error["code"] == "paused" and error["details"]["pausedBy"] == "scheduler"
    resp = await client.post(f"{ADMIN}/resume", headers=admin)
    assert (await resp.json())["paused"] is False
    assert (await client.post(f"{ws.jobs}/{job['id']}/run", headers=ws.headers)).status == 202


async def test_workspace_pause_stops_only_that_workspace(client, ws, db, token_for):
    job = await create_job(client, ws)
    resp = await client.post("/api/workspaces/ws-a/pause", headers=ws.headers)
    assert resp.status == 200
    assert (await resp.json())["paused"] is True
    resp = await client.post(f"{ws.jobs}/{job['id']}/run", headers=ws.headers)
    assert resp.status == 409 and (await resp.json())["error"]["details"]["pausedBy"] == "workspace"
    assert await SchedulerControl(db).paused_by("ws-b") is None
    resp = await client.post("/api/workspaces/ws-a/resume", headers=ws.headers)
    assert (await resp.json())["paused"] is False
    assert (await client.post(f"{ws.jobs}/{job['id']}/run", headers=ws.headers)).status == 202


async def test_a_workspace_token_cannot_pause_another_workspace(client, ws, db):
    resp = await client.post("/api/workspaces/ws-b/pause", headers=ws.headers)
    assert resp.status == 403
    assert await db.scheduler_control.count_documents({}) == 0
