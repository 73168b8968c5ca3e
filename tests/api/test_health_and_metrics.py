"""/healthz, /readyz (flips with the database handle, recovers by itself) and the API's /metrics."""

from pymongo.errors import ServerSelectionTimeoutError

from api.keys import DB


async def test_healthz_is_alive_without_a_token(client):
    resp = await client.get("/healthz")
    assert resp.status == 200 and (await resp.json()) == {"status": "ok"}


async def test_readyz_is_503_while_the_database_fails_and_recovers_by_itself(client):
    assert (await client.get("/readyz")).status == 200
    db = client.server.app[DB]
    command = db.command

    async def unreachable(*args, **kwargs):
        raise ServerSelectionTimeoutError("no servers")

    db.command = unreachable
    resp = await client.get("/readyz")
    assert resp.status == 503
    assert (await resp.json())["status"] == "unavailable"
    assert (await client.get("/healthz")).status == 200
    db.command = command
    assert (await client.get("/readyz")).status == 200


async def test_metrics_give_request_latency_by_route_template_and_status(client, ws):
    await client.get(f"{ws.jobs}/0123456789abcdef01234567", headers=ws.headers)  # 404
    await client.get(ws.jobs, headers=ws.headers)
    resp = await client.get("/metrics")
    assert resp.status == 200 and resp.content_type == "text/plain"
    text = await resp.text()
    route = "/api/workspaces/{workspaceId}/sync-jobs"
    assert f'syncjobs_api_request_duration_seconds_count{{method="GET",route="{route}",status="200"}}' in text
    assert f'route="{route}/{{jobId}}",status="404"' in text
    assert "0123456789abcdef01234567" not in text


async def test_an_empty_bootstrap_token_enables_nothing_and_says_nothing(settings, db, clock, aiohttp_client):
    from pydantic import SecretStr
    from structlog.testing import capture_logs

    from api.app import create_app

    with capture_logs() as logs:
        await aiohttp_client(
            create_app(
                settings.model_copy(update={"syncjobs_bootstrap_token": SecretStr("")}), db=db, clock=clock
            )
        )
    assert "bootstrap_token_enabled" not in [entry["event"] for entry in logs]
    assert await db.api_tokens.count_documents({}) == 0
    with capture_logs() as logs:
        client = await aiohttp_client(
            create_app(
                settings.model_copy(update={"syncjobs_bootstrap_token": SecretStr("sjt_first")}),
                db=db,
                clock=clock,
            )
        )
    assert "bootstrap_token_enabled" in [entry["event"] for entry in logs]
    resp = await client.get("/api/admin/scheduler", headers={"Authorization": "Bearer sjt_first"})
    assert resp.status == 200
