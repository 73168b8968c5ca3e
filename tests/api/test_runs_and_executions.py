from datetime import UTC, datetime, timedelta

from bson import ObjectId

from tests.api.helpers import create_job
from tests.factories import sync_job_body


async def test_run_queues_a_manual_execution_and_answers_202(client, ws, db, clock):
    job = await create_job(client, ws)
    resp = await client.post(f"{ws.jobs}/{job['id']}/run", headers=ws.headers)
    assert resp.status == 202
    body = await resp.json()
    assert resp.headers["Location"] == f"{ws.jobs}/{job['id']}/executions/{body['executionId']}"
    assert body["execution"]["status"] == "queued" and body["execution"]["trigger"] == "manual"
    doc = await db.job_executions.find_one({"_id": ObjectId(body["executionId"])})
    assert doc["jobId"] == ObjectId(job["id"]) and doc["queuedAt"] == clock.now() and doc["attempt"] == 1


async def test_second_run_while_one_is_queued_or_running_is_409_naming_it(client, ws, db):
    job = await create_job(client, ws)
    first = await (await client.post(f"{ws.jobs}/{job['id']}/run", headers=ws.headers)).json()
    resp = await client.post(f"{ws.jobs}/{job['id']}/run", headers=ws.headers)
    assert resp.status == 409
    assert (await resp.json())["error"]["details"]["executionId"] == first["executionId"]
    await db.job_executions.update_one(
        {"_id": ObjectId(first["executionId"])}, {"$set": {"status": "running"}}
    )
    resp = await client.post(f"{ws.jobs}/{job['id']}/run", headers=ws.headers)
    assert resp.status == 409
    assert (await resp.json())["error"]["details"] == {
        "executionId": first["executionId"],
        "status": "running",
    }
    assert await db.job_executions.count_documents({}) == 1


async def test_cancel_of_a_queued_execution_ends_it_at_once(client, ws):
    job = await create_job(client, ws)
    run = await (await client.post(f"{ws.jobs}/{job['id']}/run", headers=ws.headers)).json()
    url = f"{ws.jobs}/{job['id']}/executions/{run['executionId']}"
    resp = await client.post(f"{url}/cancel", headers=ws.headers)
    assert resp.status == 200
    assert (await resp.json())["status"] == "canceled"
    resp = await client.post(f"{url}/cancel", headers=ws.headers)
    assert resp.status == 409
    assert (await resp.json())["error"]["details"]["status"] == "canceled"
    # With the queued run gone, a new one may be queued.
    assert (await client.post(f"{ws.jobs}/{job['id']}/run", headers=ws.headers)).status == 202


async def test_cancel_of_a_running_execution_records_the_request(client, ws, db, clock):
    job = await create_job(client, ws)
    run = await (await client.post(f"{ws.jobs}/{job['id']}/run", headers=ws.headers)).json()
    await db.job_executions.update_one({"_id": ObjectId(run["executionId"])}, {"$set": {"status": "running"}})
    resp = await client.post(
        f"{ws.jobs}/{job['id']}/executions/{run['executionId']}/cancel", headers=ws.headers
    )
    assert resp.status == 202
    body = await resp.json()
    assert body["status"] == "running" and body["cancelRequestedAt"] is not None


async def test_execution_in_another_job_or_malformed_is_404(client, ws):
    job = await create_job(client, ws)
    other = await create_job(client, ws, name="other")
    run = await (await client.post(f"{ws.jobs}/{job['id']}/run", headers=ws.headers)).json()
    assert (
        await client.get(f"{ws.jobs}/{other['id']}/executions/{run['executionId']}", headers=ws.headers)
    ).status == 404
    assert (await client.get(f"{ws.jobs}/{job['id']}/executions/nope", headers=ws.headers)).status == 404
    assert (
        await client.post(f"{ws.jobs}/{job['id']}/executions/{ObjectId()}/cancel", headers=ws.headers)
    ).status == 404


async def seed_history(db, job: dict, count: int, start: datetime) -> list[ObjectId]:
    ids = []
    for i in range(count):
        doc = {
            "_id": ObjectId(),
            "jobId": ObjectId(job["id"]),
            "workspaceId": "ws-a",
            "trigger": "schedule",
            "scheduledFor": start + timedelta(minutes=i),
            "attempt": 1,
            "status": "succeeded" if i % 2 == 0 else "failed",
            "queuedAt": start + timedelta(minutes=i),
        }
        await db.job_executions.insert_one(doc)
        ids.append(doc["_id"])
    return ids


async def test_history_is_newest_first_paginated_and_filtered(client, ws, db):
    job = await create_job(client, ws)
    ids = await seed_history(db, job, 7, datetime(2030, 1, 1, tzinfo=UTC))
    url = f"{ws.jobs}/{job['id']}/executions"
    seen, cursor = [], None
    while True:
        query = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = await (await client.get(url, params=query, headers=ws.headers)).json()
        seen += [item["id"] for item in page["items"]]
        if not (cursor := page["nextCursor"]):
            break
    assert seen == [str(i) for i in reversed(ids)]
    failed = await (await client.get(url, params={"status": "failed"}, headers=ws.headers)).json()
    assert [item["id"] for item in failed["items"]] == [str(ids[5]), str(ids[3]), str(ids[1])]
    assert (await client.get(url, params={"status": "bogus"}, headers=ws.headers)).status == 422


async def test_status_shows_next_five_fire_times_in_the_job_timezone(client, ws, clock):
    clock.set(datetime(2030, 3, 9, 12, 0, tzinfo=UTC))  # US spring-forward is 2030-03-10
    job = await create_job(client, ws, schedule={"cron": "30 2 * * *", "timezone": "America/New_York"})
    resp = await client.get(f"{ws.jobs}/{job['id']}/status", headers=ws.headers)
    assert resp.status == 200
    status = await resp.json()
    # 02:30 does not exist on 2030-03-10 in New York: that day is skipped, and EDT follows.
    assert status["nextFireTimes"] == [
        {"utc": f"2030-03-{day}T06:30:00Z", "local": f"2030-03-{day}T02:30:00-04:00"}
        for day in (11, 12, 13, 14, 15)
    ]
    assert status["running"] is False and status["activeExecution"] is None
    assert (
        status["version"] == 1
        and status["scheduleAppliedVersion"] is None
        and status["scheduleLive"] is False
    )


async def test_status_shows_the_running_execution(client, ws, db):
    job = await create_job(client, ws)
    run = await (await client.post(f"{ws.jobs}/{job['id']}/run", headers=ws.headers)).json()
    await db.job_executions.update_one({"_id": ObjectId(run["executionId"])}, {"$set": {"status": "running"}})
    status = await (await client.get(f"{ws.jobs}/{job['id']}/status", headers=ws.headers)).json()
    assert status["running"] is True
    assert status["activeExecution"]["id"] == run["executionId"]


async def test_a_run_requiring_a_label_no_live_worker_offers_says_what_it_waits_for(client, ws, db, clock):
    job = await create_job(client, ws, requiredLabel="gpu")
    assert job["requiredLabel"] == "gpu"
    await client.post(f"{ws.jobs}/{job['id']}/run", headers=ws.headers)
    status_url = f"{ws.jobs}/{job['id']}/status"

    async def waiting_for():
        body = await (await client.get(status_url, headers=ws.headers)).json()
        return body["activeExecution"]["waitingFor"]

    # A live worker without the label, and a dead one (its heartbeat is stale) that had it.
    await db.workers.insert_many(
        [
            {"_id": "a:1:x", "heartbeatAt": clock.now(), "labels": []},
            {"_id": "b:1:x", "heartbeatAt": clock.now() - timedelta(minutes=5), "labels": ["gpu"]},
        ]
    )
    assert "'gpu'" in await waiting_for()
    await db.workers.insert_one({"_id": "c:1:x", "heartbeatAt": clock.now(), "labels": ["gpu", "eu"]})
    assert await waiting_for() is None


async def test_a_label_that_is_not_a_plain_word_is_refused(client, ws):
    body = sync_job_body(
        dataSourceId=ws.data_source_id, destinationDatabaseId=ws.destination_id, requiredLabel="gpu; rm -rf /"
    )
    resp = await client.post(ws.jobs, json=body, headers=ws.headers)
    assert resp.status == 422
    assert (await resp.json())["error"]["code"]
