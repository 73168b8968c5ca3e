"""The job's contract with a user: entity selections, disabled jobs, idempotent switches, PUT round trips."""

from tests.api.helpers import create_job
from tests.factories import sync_job_body


def job_body(ws, **overrides):
    return sync_job_body(dataSourceId=ws.data_source_id, destinationDatabaseId=ws.destination_id, **overrides)


async def test_an_entity_the_source_does_not_declare_is_422_at_write_time(client, ws, db):
    resp = await client.post(
        ws.jobs, json=job_body(ws, entities=["customers", "invoices"]), headers=ws.headers
    )
    assert resp.status == 422
    details = (await resp.json())["error"]["details"]
    assert details == [
        {"field": "entities.1", "message": "the data source declares no entity 'invoices'; it has customers"}
    ]
    assert await db.syncjobs.count_documents({}) == 0
    job = await create_job(client, ws, entities=["customers"])
    resp = await client.patch(f"{ws.jobs}/{job['id']}", json={"entities": ["orders"]}, headers=ws.headers)
    assert resp.status == 422


async def test_an_empty_entity_list_is_refused_and_leaving_it_out_means_every_entity(client, ws):
    resp = await client.post(ws.jobs, json=job_body(ws, entities=[]), headers=ws.headers)
    assert resp.status == 422
    assert (await resp.json())["error"]["details"][0]["field"] == "entities"
    job = await create_job(client, ws)
    assert job["entities"] is None


async def test_a_disabled_job_runs_only_when_asked_explicitly(client, ws, db):
    job = await create_job(client, ws, enabled=False)
    url = f"{ws.jobs}/{job['id']}/run"
    resp = await client.post(url, headers=ws.headers)
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "job_disabled"
    assert await db.job_executions.count_documents({}) == 0
    resp = await client.post(url, params={"evenIfDisabled": "true"}, headers=ws.headers)
    assert resp.status == 202
    assert (await resp.json())["execution"]["trigger"] == "manual"


async def test_status_of_a_disabled_job_lists_no_fire_times(client, ws):
    job = await create_job(client, ws, enabled=False)
    status = await (await client.get(f"{ws.jobs}/{job['id']}/status", headers=ws.headers)).json()
    assert status["enabled"] is False and status["nextFireTimes"] == [] and status["nextRunAt"] is None


async def test_enable_and_disable_are_idempotent_so_a_retry_does_not_undo_them(client, ws):
    job = await create_job(client, ws)
    url = f"{ws.jobs}/{job['id']}"
    first = await client.post(f"{url}/disable", headers=ws.headers)
    retried = await client.post(f"{url}/disable", headers=ws.headers)
    assert first.status == retried.status == 200
    assert (await first.json())["enabled"] is False and (await retried.json())["enabled"] is False
    assert (await retried.json())["version"] == 2 and retried.headers["ETag"] == '"2"'
    for _ in range(2):
        enabled = await (await client.post(f"{url}/enable", headers=ws.headers)).json()
    assert enabled["enabled"] is True and enabled["version"] == 3


async def test_put_of_what_get_returned_is_accepted(client, ws):
    job = await create_job(client, ws, timeoutSeconds=120)
    url = f"{ws.jobs}/{job['id']}"
    shown = await (await client.get(url, headers=ws.headers)).json()
    resp = await client.put(url, json={**shown, "name": "Renamed"}, headers=ws.headers)
    assert resp.status == 200, await resp.text()
    replaced = await resp.json()
    assert replaced["name"] == "Renamed" and replaced["timeoutSeconds"] == 120
    assert "Warning" not in resp.headers


async def test_put_naming_a_read_only_field_with_another_value_is_422_read_only(client, ws):
    job = await create_job(client, ws)
    url = f"{ws.jobs}/{job['id']}"
    shown = await (await client.get(url, headers=ws.headers)).json()
    resp = await client.put(url, json={**shown, "runCount": 99, "version": 1}, headers=ws.headers)
    assert resp.status == 422
    assert (await resp.json())["error"]["details"] == [
        {"field": "runCount", "code": "read_only", "message": "read-only: differs from the stored value"}
    ]
    resp = await client.patch(url, json={"lastRunAt": "2020-01-01T00:00:00Z"}, headers=ws.headers)
    assert (await resp.json())["error"]["details"][0]["code"] == "read_only"


async def test_put_that_leaves_settings_out_resets_them_and_says_so(client, ws):
    job = await create_job(client, ws, timeoutSeconds=120)
    resp = await client.put(f"{ws.jobs}/{job['id']}", json=job_body(ws, name="Slim"), headers=ws.headers)
    assert resp.status == 200
    assert (await resp.json())["timeoutSeconds"] == 3600
    assert resp.headers["Warning"].startswith("299 syncjobs ")
    assert "timeoutSeconds" in resp.headers["Warning"] and "retry" not in resp.headers["Warning"]


async def test_hashed_cron_expressions_are_refused_in_plain_words(client, ws):
    resp = await client.post(ws.jobs, json=job_body(ws, schedule={"cron": "H * * * *"}), headers=ws.headers)
    assert resp.status == 422
    message = (await resp.json())["error"]["details"][0]["message"]
    assert "hashed (H)" in message and "not supported" in message and "hash_id" not in message


async def test_a_data_source_or_destination_takes_back_what_get_returned(client, ws):
    for path, resource_id in (("data-sources", ws.data_source_id), ("destinations", ws.destination_id)):
        url = f"/api/workspaces/ws-a/{path}/{resource_id}"
        shown = await (await client.get(url, headers=ws.headers)).json()
        resp = await client.put(url, json={**shown, "name": "renamed"}, headers=ws.headers)
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["name"] == "renamed"
        resp = await client.patch(url, json={"createdAt": "2020-01-01T00:00:00Z"}, headers=ws.headers)
        assert resp.status == 422
        assert (await resp.json())["error"]["details"][0] == {
            "field": "createdAt",
            "code": "read_only",
            "message": "read-only: differs from the stored value",
        }
