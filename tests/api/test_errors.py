from tests.api.helpers import create_job


async def assert_error(resp, status: int, code: str):
    assert resp.status == status
    assert resp.content_type == "application/json"
    body = await resp.json()
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body


async def test_malformed_json_is_400(client, ws):
    resp = await client.post(
        ws.jobs, data="{not json", headers={**ws.headers, "Content-Type": "application/json"}
    )
    await assert_error(resp, 400, "bad_request")


async def test_missing_body_is_400(client, ws):
    await assert_error(await client.post(ws.jobs, headers=ws.headers), 400, "bad_request")


async def test_non_json_content_type_is_415(client, ws):
    resp = await client.post(ws.jobs, data="name=x", headers={**ws.headers, "Content-Type": "text/plain"})
    await assert_error(resp, 415, "unsupported_media_type")


async def test_body_over_one_mebibyte_is_413(client, ws):
    resp = await client.post(
        ws.jobs,
        data=b'{"name": "' + b"x" * (1024 * 1024) + b'"}',
        headers={**ws.headers, "Content-Type": "application/json"},
    )
    await assert_error(resp, 413, "payload_too_large")


async def test_wrong_method_is_405_with_allow(client, ws):
    job = await create_job(client, ws)
    resp = await client.post(f"{ws.jobs}/{job['id']}", json={}, headers=ws.headers)
    await assert_error(resp, 405, "method_not_allowed")
    assert "PUT" in resp.headers["Allow"]


async def test_unknown_route_is_404_json(client):
    await assert_error(await client.get("/api/nothing-here"), 404, "not_found")


async def test_json_that_is_not_an_object_is_422(client, ws):
    for body in ([1], "text", 3):
        resp = await client.post(ws.jobs, json=body, headers=ws.headers)
        await assert_error(resp, 422, "validation_failed")


async def test_wrong_types_everywhere_never_500(client, ws):
    job = await create_job(client, ws)
    bodies = [
        {"name": 5},
        {"schedule": "x"},
        {"schedule": {"cron": 5}},
        {"entities": "a"},
        {"retry": []},
        {"enabled": "maybe"},
        {"timeoutSeconds": "1e999"},
        {"schedule": {"timezone": None, "cron": None}},
    ]
    for body in bodies:
        for method in ("POST", "PUT", "PATCH"):
            url = ws.jobs if method == "POST" else f"{ws.jobs}/{job['id']}"
            resp = await client.request(method, url, json=body, headers=ws.headers)
            assert 400 <= resp.status < 500, (method, body, resp.status)


async def test_request_id_is_echoed(client):
    resp = await client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert resp.headers["X-Request-Id"] == "abc-123"


async def test_a_database_that_gives_up_on_a_request_answers_503_to_retry_not_500(client, ws, monkeypatch):
    from pymongo.errors import AutoReconnect

    from models.sync_job_store import SyncJobStore

    async def cut_off(*args, **kwargs):
        raise AutoReconnect("operation cancelled")  # what the driver says when it gives up on a command

    monkeypatch.setattr(SyncJobStore, "list", cut_off)
    resp = await client.get(ws.jobs, headers=ws.headers)
    body = await assert_error(resp, 503, "store_unavailable")
    assert resp.headers["Retry-After"] == "5" and "operation cancelled" not in body["error"]["message"]
