"""Webhook CRUD: the secret shown once, URLs masked and sealed, internal targets refused, workspaces apart."""

from bson import ObjectId

HOOKS = "/api/workspaces/ws-a/webhooks"


async def test_create_shows_the_secret_once_and_masks_the_url(client, ws, db):
    body = {
        "url": "https://hooks.slack.com/services/T000/B000/XXXX",
        "format": "slack",
        "failureThreshold": 2,
    }
    resp = await client.post(HOOKS, json=body, headers=ws.headers)
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    assert created["secret"].startswith("whsec_") and created["url"] == "https://hooks.slack.com/***"
    assert created["events"] == [
        "execution.succeeded",
        "execution.failed",
        "execution.timed_out",
        "execution.abandoned",
        "job.failing",
        "job.recovered",
        "job.duration_anomaly",
    ]
    assert created["failureThreshold"] == 2 and created["format"] == "slack" and created["enabled"] is True
    assert resp.headers["Location"] == f"{HOOKS}/{created['id']}"
    fetched = await (await client.get(f"{HOOKS}/{created['id']}", headers=ws.headers)).json()
    assert "secret" not in fetched and fetched["url"] == "https://hooks.slack.com/***"
    listed = await (await client.get(HOOKS, headers=ws.headers)).json()
    assert [item["id"] for item in listed["items"]] == [created["id"]] and "secret" not in listed["items"][0]
    stored = await db.webhooks.find_one({"_id": ObjectId(created["id"])})
    # At rest, neither the signing secret nor the URL's credential is readable.
    assert created["secret"] not in str(stored) and "XXXX" not in str(stored)


async def test_patch_keeps_the_url_and_secret_and_delete_removes_it(client, ws, db):
    created = await (
        await client.post(HOOKS, json={"url": "https://example.com/h"}, headers=ws.headers)
    ).json()
    url = f"{HOOKS}/{created['id']}"
    before = await db.webhooks.find_one({"_id": ObjectId(created["id"])})
    resp = await client.patch(url, json={"events": ["job.failing"], "enabled": False}, headers=ws.headers)
    assert resp.status == 200, await resp.text()
    patched = await resp.json()
    assert patched["events"] == ["job.failing"] and patched["enabled"] is False and patched["version"] == 2
    after = await db.webhooks.find_one({"_id": ObjectId(created["id"])})
    assert after["secret"] == before["secret"]
    assert (await client.patch(url, json={"secret": "mine"}, headers=ws.headers)).status == 422
    assert (await client.delete(url, headers=ws.headers)).status == 204
    assert (await client.get(url, headers=ws.headers)).status == 404


async def test_unknown_events_formats_and_schemes_are_422(client, ws):
    for body in (
        {"url": "https://example.com", "events": ["execution.exploded"]},
        {"url": "https://example.com", "format": "teams"},
        {"url": "ftp://example.com/x"},
        {"url": "https://example.com", "failureThreshold": 0},
        {"url": "https://example.com", "events": []},
    ):
        resp = await client.post(HOOKS, json=body, headers=ws.headers)
        assert resp.status == 422, body


async def test_webhooks_to_our_own_hosts_and_network_are_refused(client, ws, db):
    for target in (
        "http://127.0.0.1:8080/api/admin/scheduler",
        "http://localhost/x",
        "http://10.0.0.5/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
    ):
        resp = await client.post(HOOKS, json={"url": target}, headers=ws.headers)
        assert resp.status == 422, target
        assert (await resp.json())["error"]["code"] == "target_refused"
    created = await (await client.post(HOOKS, json={"url": "https://example.com"}, headers=ws.headers)).json()
    resp = await client.patch(
        f"{HOOKS}/{created['id']}", json={"url": "http://10.1.2.3/"}, headers=ws.headers
    )
    assert resp.status == 422
    assert await db.webhooks.count_documents({}) == 1


async def test_another_workspace_can_neither_see_nor_change_a_webhook(client, ws, token_for):
    created = await (await client.post(HOOKS, json={"url": "https://example.com"}, headers=ws.headers)).json()
    intruder = await token_for("ws-b")
    assert (await client.get(HOOKS, headers=intruder)).status == 403
    for method in ("get", "patch", "delete"):
        kwargs = {"json": {"enabled": False}} if method == "patch" else {}
        resp = await getattr(client, method)(
            f"/api/workspaces/ws-b/webhooks/{created['id']}", headers=intruder, **kwargs
        )
        assert resp.status == 404, method
    resp = await client.get(f"/api/workspaces/ws-b/webhooks/{created['id']}/deliveries", headers=intruder)
    assert resp.status == 404


async def test_a_url_that_does_not_parse_is_a_422_not_a_500(client, ws):
    for url in ("http://[::1", "https://hooks.example.com:port/x"):
        resp = await client.post(f"/api/workspaces/{ws.id}/webhooks", json={"url": url}, headers=ws.headers)
        assert resp.status == 422, (url, await resp.text())
        assert (await resp.json())["error"]["details"][0]["field"] == "url"
