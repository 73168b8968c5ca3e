from structlog.testing import capture_logs

from api.app import create_app
from models.settings import Settings


async def test_missing_or_malformed_token_is_401(client):
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}):
        resp = await client.get("/api/workspaces/ws-a/sync-jobs", headers=headers)
        assert resp.status == 401
        assert (await resp.json())["error"]["code"] == "unauthenticated"
        assert resp.headers["WWW-Authenticate"] == "Bearer"


async def test_unknown_token_is_401(client):
    resp = await client.get("/api/workspaces/ws-a/sync-jobs", headers={"Authorization": "Bearer sjt_nope"})
    assert resp.status == 401


async def test_token_of_another_workspace_is_403(client, token_for):
    headers = await token_for("ws-b")
    resp = await client.get("/api/workspaces/ws-a/sync-jobs", headers=headers)
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "forbidden"


async def test_admin_token_is_valid_for_every_workspace(client, token_for):
    headers = await token_for(admin=True)
    for workspace in ("ws-a", "ws-b"):
        assert (await client.get(f"/api/workspaces/{workspace}/sync-jobs", headers=headers)).status == 200


async def test_tokens_are_created_once_listed_without_secret_and_revoked(client, token_for, db):
    headers = await token_for("ws-a")
    resp = await client.post("/api/workspaces/ws-a/tokens", json={"name": "ci"}, headers=headers)
    assert resp.status == 201
    created = await resp.json()
    token = created["token"]
    assert token.startswith("sjt_") and created["name"] == "ci" and created["workspaceId"] == "ws-a"
    stored = await db.api_tokens.find_one({"name": "ci"})
    assert token not in str(stored)
    new_headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/workspaces/ws-a/sync-jobs", headers=new_headers)).status == 200
    listing = await (await client.get("/api/workspaces/ws-a/tokens", headers=headers)).json()
    assert {item["name"] for item in listing["items"]} == {"test", "ci"}
    assert all("token" not in item and "tokenHash" not in item for item in listing["items"])
    ci = next(item for item in listing["items"] if item["name"] == "ci")
    assert ci["lastUsedAt"] is not None
    assert (
        await client.delete(f"/api/workspaces/ws-a/tokens/{created['id']}", headers=headers)
    ).status == 204
    assert (await client.get("/api/workspaces/ws-a/sync-jobs", headers=new_headers)).status == 401
    assert (
        await client.delete(f"/api/workspaces/ws-a/tokens/{created['id']}", headers=headers)
    ).status == 404


async def test_a_workspace_cannot_revoke_another_workspaces_token(client, token_for):
    a = await token_for("ws-a")
    b = await token_for("ws-b")
    created = await (await client.post("/api/workspaces/ws-b/tokens", headers=b)).json()
    assert (await client.delete(f"/api/workspaces/ws-a/tokens/{created['id']}", headers=a)).status == 404


async def test_bootstrap_token_is_an_admin_token(db, clock, secrets, aiohttp_client, settings):
    settings = Settings(_env_file=None, syncjobs_bootstrap_token="let-me-in-please")
    client = await aiohttp_client(create_app(settings, db=db, clock=clock, secrets=secrets))
    headers = {"Authorization": "Bearer let-me-in-please"}
    assert (await client.get("/api/workspaces/anything/sync-jobs", headers=headers)).status == 200
    assert "let-me-in-please" not in str(await db.api_tokens.find_one({}))


async def test_tokens_never_reach_the_logs(client, token_for):
    headers = await token_for("ws-a")
    with capture_logs() as logs:
        resp = await client.post("/api/workspaces/ws-a/tokens", json={"name": "x"}, headers=headers)
        token = (await resp.json())["token"]
        await client.get("/api/workspaces/ws-a/sync-jobs", headers={"Authorization": f"Bearer {token}"})
    assert logs, "requests are logged"
    text = str(logs)
    assert token not in text and headers["Authorization"] not in text


def test_settings_hide_secrets_in_their_repr():
    settings = Settings(_env_file=None, syncjobs_bootstrap_token="hunter2", syncjobs_secret_key="k")
    assert "hunter2" not in repr(settings)
