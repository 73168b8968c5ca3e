"""Each input an audit answered with a 500, or accepted when it should not have: now a 4xx JSON error."""

import base64
import json

import pytest
from bson import ObjectId

from tests.api.helpers import create_job
from tests.factories import http_source_body, sync_job_body


async def assert_error(resp, status: int | tuple[int, ...]) -> dict:
    statuses = status if isinstance(status, tuple) else (status,)
    assert resp.status in statuses, (resp.status, await resp.text())
    assert resp.content_type == "application/json"
    body = await resp.json()
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def fields_of(error: dict) -> set[str]:
    return {item["field"] for item in error["details"]}


def job_body(ws, **overrides) -> dict:
    return sync_job_body(dataSourceId=ws.data_source_id, destinationDatabaseId=ws.destination_id, **overrides)


async def test_json_nested_990_deep_is_400_not_a_recursion_crash(client, ws):
    deep = "[" * 990 + "]" * 990
    for url in (ws.jobs, f"/api/workspaces/{ws.id}/data-sources"):
        resp = await client.post(url, data=deep, headers={**ws.headers, "Content-Type": "application/json"})
        assert (await assert_error(resp, 400))["code"] == "bad_request"
    job = await create_job(client, ws)
    nested = '{"description": ' + '{"a": ' * 990 + "1" + "}" * 991
    resp = await client.patch(
        f"{ws.jobs}/{job['id']}", data=nested, headers={**ws.headers, "Content-Type": "application/json"}
    )
    await assert_error(resp, 400)


@pytest.mark.parametrize(
    "zone", ["America", "Europe", "US", "Etc", "Factory", "posixrules", "right/UTC", "localtime", "../UTC"]
)
async def test_zone_names_that_are_directories_or_not_zones_are_422(client, ws, zone):
    resp = await client.post(
        ws.jobs, json=job_body(ws, schedule={"cron": "@daily", "timezone": zone}), headers=ws.headers
    )
    assert "schedule.timezone" in fields_of(await assert_error(resp, 422))


@pytest.mark.parametrize("zone", ["UTC", "Europe/London", "US/Eastern", "EST"])
async def test_iana_zone_and_link_names_are_accepted(client, ws, zone):
    await create_job(client, ws, schedule={"cron": "@daily", "timezone": zone})


async def test_a_cursor_naming_no_object_id_is_422(client, ws):
    cursor = base64.urlsafe_b64encode(json.dumps({"id": "zzz"}).encode()).decode()
    job = await create_job(client, ws)
    for url in (ws.jobs, f"{ws.jobs}/{job['id']}/executions", f"/api/workspaces/{ws.id}/destinations"):
        resp = await client.get(url, params={"cursor": cursor}, headers=ws.headers)
        assert fields_of(await assert_error(resp, 422)) == {"cursor"}


@pytest.mark.parametrize("tag", ['"²"', '"' + "9" * 5000 + '"', '"١"'])
async def test_if_match_with_non_ascii_digits_or_5000_digits_is_412(client, ws, tag):
    job = await create_job(client, ws)
    resp = await client.patch(
        f"{ws.jobs}/{job['id']}", json={"name": "x"}, headers={**ws.headers, "If-Match": tag}
    )
    await assert_error(resp, 412)


@pytest.mark.parametrize(
    "body",
    [
        http_source_body(headers={"X-\x00": "v"}),
        http_source_body(entities=[{"name": "c", "path": "/c", "params": {"a\x00b": "1"}}]),
        {"name": "cmd", "type": "command", "argv": ["/bin/true"], "env": {"A\x00": "1"}},
    ],
)
async def test_a_nul_byte_in_a_key_is_422_naming_the_field(client, ws, body):
    resp = await client.post(f"/api/workspaces/{ws.id}/data-sources", json=body, headers=ws.headers)
    error = await assert_error(resp, 422)
    assert all("\x00" not in item["field"] for item in error["details"])


async def test_an_integer_past_64_bits_is_422(client, ws):
    body = http_source_body(pagination={"type": "page", "firstPage": 2**63})
    resp = await client.post(f"/api/workspaces/{ws.id}/data-sources", json=body, headers=ws.headers)
    assert fields_of(await assert_error(resp, 422)) == {"pagination.firstPage"}
    body = http_source_body(pagination={"type": "page", "firstPage": 2**62})
    resp = await client.post(f"/api/workspaces/{ws.id}/data-sources", json=body, headers=ws.headers)
    assert fields_of(await assert_error(resp, 422)) == {"http.pagination.firstPage"}


@pytest.mark.parametrize("name", ["a\x00b", "line\nbreak", "\x1b[31mred", "tab\there", "c1\x85"])
async def test_names_with_control_characters_are_422(client, ws, name):
    resp = await client.post(ws.jobs, json=job_body(ws, name=name), headers=ws.headers)
    assert "name" in fields_of(await assert_error(resp, 422))
    resp = await client.post(
        f"/api/workspaces/{ws.id}/data-sources", json=http_source_body(name=name), headers=ws.headers
    )
    await assert_error(resp, 422)
    resp = await client.post(f"/api/workspaces/{ws.id}/tokens", json={"name": name}, headers=ws.headers)
    assert "name" in fields_of(await assert_error(resp, 422))


async def test_an_argv_with_nul_is_422(client, ws):
    body = {"name": "cmd", "type": "command", "argv": ["/bin/echo", "a\x00b"]}
    resp = await client.post(f"/api/workspaces/{ws.id}/data-sources", json=body, headers=ws.headers)
    await assert_error(resp, 422)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"timeoutSeconds": True}, "timeoutSeconds"),
        ({"misfireGraceSeconds": "60"}, "misfireGraceSeconds"),
        ({"enabled": 1}, "enabled"),
        ({"enabled": "true"}, "enabled"),
        ({"retry": {"maxAttempts": False}}, "retry.maxAttempts"),
    ],
)
async def test_booleans_and_strings_are_not_integers_nor_integers_booleans(client, ws, overrides, field):
    resp = await client.post(ws.jobs, json=job_body(ws, **overrides), headers=ws.headers)
    assert field in fields_of(await assert_error(resp, 422))


async def test_max_retries_false_is_422(client, ws):
    resp = await client.post(
        f"/api/workspaces/{ws.id}/data-sources", json=http_source_body(maxRetries=False), headers=ws.headers
    )
    assert "http.maxRetries" in fields_of(await assert_error(resp, 422))


async def test_a_cron_that_never_fires_in_its_zone_is_422(client, ws):
    body = job_body(ws, schedule={"cron": "30 1 * 3 L0", "timezone": "Europe/London"})
    resp = await client.post(ws.jobs, json=body, headers=ws.headers)
    error = await assert_error(resp, 422)
    assert "schedule" in fields_of(error)
    # The same cron fires in UTC, where 01:30 on the last Sunday of March exists.
    await create_job(client, ws, schedule={"cron": "30 1 * 3 L0", "timezone": "UTC"})


async def test_status_of_a_stored_never_firing_schedule_answers_200_with_no_fire_times(client, ws, db):
    for schedule in (
        {"cron": "30 1 * 3 L0", "timezone": "Europe/London"},
        {"cron": "@daily", "timezone": "America"},
    ):
        job = await create_job(client, ws)
        # Stored before the checks existed: written straight to the database.
        await db.syncjobs.update_one({"_id": ObjectId(job["id"])}, {"$set": {"schedule": schedule}})
        resp = await client.get(f"{ws.jobs}/{job['id']}/status", headers=ws.headers)
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["nextFireTimes"] == []


async def test_aiohttps_own_400s_for_oversized_urls_and_headers_are_json(client, ws):
    resp = await client.get(ws.jobs + "?q=" + "a" * 20_000, headers=ws.headers)
    error = await assert_error(resp, 400)
    assert error["code"] == "bad_request"
    resp = await client.get(ws.jobs, headers={**ws.headers, "X-Big": "b" * 20_000})
    await assert_error(resp, 400)
