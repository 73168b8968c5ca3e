"""The whole path a user takes: API writes intent, the worker acts, a real child process syncs."""

import asyncio
from pathlib import Path

from executor.runner import SubprocessRunner
from models.namespaces import workspace_database
from tests.factories import destination_body
from tests.fakes import eventually
from tests.interpreters import script_python
from worker.scheduler import Scheduler

SOURCE = """
import json, sys
spec = json.loads(sys.stdin.readline())
for i in range(25):
    print(json.dumps({"type": "record", "entity": "things", "data": {"id": i}}), flush=True)
print(json.dumps({"type": "state", "entity": "things", "cursor": 24}))
print(json.dumps({"type": "result", "status": "succeeded"}))
"""


async def test_a_job_created_and_run_through_the_api_syncs_records(
    client, db, clock, settings, secrets, token_for, readable_dir
):
    headers = await token_for("ws-a")
    script = Path(readable_dir) / "source.py"
    script.write_text(SOURCE)
    connector = {"name": "things", "executable": script_python(), "args": [str(script)]}
    admin = await token_for(admin=True)
    assert (await client.post("/api/admin/connectors", json=connector, headers=admin)).status == 201
    base = "/api/workspaces/ws-a"
    source = await (
        await client.post(
            f"{base}/data-sources",
            headers=headers,
            json={"name": "script", "type": "command", "connector": "things"},
        )
    ).json()
    destination = await (
        await client.post(f"{base}/destinations", headers=headers, json=destination_body())
    ).json()
    job = await (
        await client.post(
            f"{base}/sync-jobs",
            headers=headers,
            json={
                "name": "things",
                "dataSourceId": source["id"],
                "destinationDatabaseId": destination["id"],
                "schedule": {"cron": "0 3 * * *", "timezone": "Europe/Paris"},
                "syncMode": "incremental",
            },
        )
    ).json()

    scheduler = Scheduler(
        db=db, runner=SubprocessRunner(db, secrets=secrets, settings=settings), clock=clock, settings=settings
    )
    stop = asyncio.Event()
    worker = asyncio.create_task(scheduler.run(stop))
    try:
        await clock.advance(3)
        status = await (await client.get(f"{base}/sync-jobs/{job['id']}/status", headers=headers)).json()
        assert status["scheduleLive"] is True and status["scheduleAppliedVersion"] == 1

        run = await (await client.post(f"{base}/sync-jobs/{job['id']}/run", headers=headers)).json()
        url = f"{base}/sync-jobs/{job['id']}/executions/{run['executionId']}"

        async def finished():
            await clock.advance(2)
            execution = await (await client.get(url, headers=headers)).json()
            return execution if execution["status"] not in ("queued", "running") else None

        execution = await eventually(finished, timeout=20, message="the run to finish")
        assert execution["status"] == "succeeded", execution
        assert execution["stats"]["entities"]["things"]["written"] == 25
        assert execution["pid"] > 0 and execution["exitCode"] == 0
        assert destination["effectiveDatabase"] == workspace_database("ws-a", "warehouse")
        assert await db.client[destination["effectiveDatabase"]]["things"].count_documents({}) == 25

        status = await (await client.get(f"{base}/sync-jobs/{job['id']}/status", headers=headers)).json()
        assert (
            status["lastRunStatus"] == "succeeded" and status["runCount"] == 1 and status["running"] is False
        )
        stored = await db.syncjobs.find_one({"workspaceId": "ws-a"})
        assert stored["cursors"] == {"things": 24}
    finally:
        stop.set()
        await clock.advance(1)
        await asyncio.wait_for(worker, 10)
