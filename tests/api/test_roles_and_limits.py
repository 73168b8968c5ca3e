"""Token roles, admin and bootstrap tokens, the grant cache, rate limits and quotas: each test is the
attack it stops."""

import pytest

from api.app import create_app
from api.roles import required_role
from api.routes import ROUTES
from models.settings import Settings
from models.tokens import TokenStore, hash_token
from tests.api.helpers import create_job
from tests.conftest import SECRET_KEY
from tests.factories import destination_body, http_source_body, sync_job_body


async def app_client(aiohttp_client, db, clock, secrets, **overrides):
    settings = Settings(_env_file=None, syncjobs_secret_key=SECRET_KEY, log_level="error", **overrides)
    return await aiohttp_client(create_app(settings, db=db, clock=clock, secrets=secrets))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def mint(client, headers, workspace="ws-a", **body) -> dict:
    resp = await client.post(f"/api/workspaces/{workspace}/tokens", json=body, headers=headers)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def status_of(client, method: str, url: str, headers, json=None) -> int:
    resp = await client.request(method, url, json=json, headers=headers)
    if resp.status >= 400:
        assert set((await resp.json())["error"]) == {"code", "message", "details"}
    return resp.status


async def test_each_role_reaches_only_what_it_may(client, ws, token_for):
    job = await create_job(client, ws)
    one = f"{ws.jobs}/{job['id']}"
    new_job = sync_job_body(dataSourceId=ws.data_source_id, destinationDatabaseId=ws.destination_id)
    attempts = {
        "read": ("GET", one, None),
        "run": ("POST", f"{one}/run", None),
        "disable": ("POST", f"{one}/disable", None),
        "enable": ("POST", f"{one}/enable", None),
        "toggle": ("POST", f"{one}/toggle", None),
        "edit job": ("PATCH", one, {"description": "mine now"}),
        "create job": ("POST", ws.jobs, new_job),
        "create source": ("POST", "/api/workspaces/ws-a/data-sources", http_source_body()),
        "create destination": ("POST", "/api/workspaces/ws-a/destinations", destination_body(name="d2")),
        "list tokens": ("GET", "/api/workspaces/ws-a/tokens", None),
        "mint token": ("POST", "/api/workspaces/ws-a/tokens", {"name": "x"}),
        "admin tokens": ("GET", "/api/admin/tokens", None),
    }
    allowed = {
        "viewer": {"read"},
        "operator": {"read", "run", "disable", "enable", "toggle"},
        "editor": {
            "read",
            "run",
            "disable",
            "enable",
            "toggle",
            "edit job",
            "create job",
            "create source",
            "create destination",
        },
        "owner": set(attempts) - {"admin tokens"},
    }
    for role, may in allowed.items():
        headers = await token_for("ws-a", role=role)
        for what, (method, url, body) in attempts.items():
            status = await status_of(client, method, url, headers, body)
            if what in may:
                assert status < 400 or (what == "run" and status == 409), (role, what, status)
            else:
                assert status == 403, (role, what, status)


async def test_an_operator_cancels_a_run_but_cannot_delete_the_job(client, ws, token_for):
    job = await create_job(client, ws)
    run = await (await client.post(f"{ws.jobs}/{job['id']}/run", headers=ws.headers)).json()
    operator = await token_for("ws-a", role="operator")
    cancel = f"{ws.jobs}/{job['id']}/executions/{run['executionId']}/cancel"
    assert await status_of(client, "POST", cancel, operator) == 200
    assert await status_of(client, "DELETE", f"{ws.jobs}/{job['id']}", operator) == 403


def test_every_route_needs_the_role_its_verb_implies():
    for route in ROUTES:
        role = required_role(route.method, route.path)
        if route.path.startswith("/api/admin/"):
            expected = "admin"
        elif "/tokens" in route.path:
            expected = "owner"
        elif route.method == "GET":
            expected = "viewer"
        elif route.path.rsplit("/", 1)[-1] in (
            "run",
            "toggle",
            "enable",
            "disable",
            "cancel",
            "pause",
            "resume",
        ):
            expected = "operator"
        else:
            expected = "editor"
        assert role == expected, (route.method, route.path)


async def test_a_new_token_is_a_viewer_unless_asked_and_none_is_minted_above_its_maker(client, token_for):
    owner = await token_for("ws-a")
    minted = await mint(client, owner, name="dashboard")
    assert minted["role"] == "viewer"
    assert (await mint(client, owner, name="co-owner", role="owner"))["role"] == "owner"
    resp = await client.post("/api/workspaces/ws-a/tokens", json={"role": "admin"}, headers=owner)
    assert resp.status == 422
    for role in ("viewer", "operator", "editor"):
        headers = await token_for("ws-a", role=role)
        resp = await client.post("/api/workspaces/ws-a/tokens", json={"role": "viewer"}, headers=headers)
        assert resp.status == 403, role


async def test_a_minted_token_cannot_revoke_its_creator(client, db, token_for):
    owner = await token_for("ws-a")
    creator_id = (await db.api_tokens.find_one({"workspaceId": "ws-a"}))["_id"]
    minted = await mint(client, owner, name="ci", role="editor")
    resp = await client.delete(f"/api/workspaces/ws-a/tokens/{creator_id}", headers=bearer(minted["token"]))
    assert resp.status == 403
    assert (await client.get("/api/workspaces/ws-a/sync-jobs", headers=owner)).status == 200


async def test_no_workspace_token_reaches_admin_tokens_even_one_planted_as_admin(
    client, db, token_for, clock
):
    # A stored admin token is no workspace's: an owner neither sees nor revokes it.
    admin = await token_for(admin=True)
    admin_id = (await db.api_tokens.find_one({"admin": True}))["_id"]
    owner = await token_for("ws-a")
    assert (await client.delete(f"/api/workspaces/ws-a/tokens/{admin_id}", headers=owner)).status == 404
    assert (await client.get("/api/admin/tokens", headers=admin)).status == 200
    # A workspace token planted with role "admin" (say through a destination writing into api_tokens) is
    # no admin: only `admin: true` is, and the planted one is a mere viewer its owner can revoke.
    planted, doc = await TokenStore(db).issue(workspace_id="ws-a", name="odd", role="owner", now=clock.now())
    await db.api_tokens.update_one({"_id": doc["_id"]}, {"$set": {"role": "admin"}})
    assert (await client.get("/api/admin/tokens", headers=bearer(planted))).status == 403
    assert (
        await client.post("/api/workspaces/ws-a/sync-jobs", json={}, headers=bearer(planted))
    ).status == 403
    assert (await client.get("/api/workspaces/ws-b/sync-jobs", headers=bearer(planted))).status == 403
    assert (await client.delete(f"/api/workspaces/ws-a/tokens/{doc['_id']}", headers=owner)).status == 204


async def test_admin_tokens_are_stored_listed_and_revoked_only_by_admins(client, token_for):
    admin = await token_for(admin=True)
    owner = await token_for("ws-a")
    assert (await client.post("/api/admin/tokens", json={"name": "x"}, headers=owner)).status == 403
    resp = await client.post("/api/admin/tokens", json={"name": "ops"}, headers=admin)
    assert resp.status == 201
    created = await resp.json()
    assert created["admin"] and created["role"] == "admin" and created["workspaceId"] is None
    listing = await (await client.get("/api/admin/tokens", headers=admin)).json()
    assert {item["name"] for item in listing["items"]} == {"test", "ops"}
    assert all("tokenHash" not in item and "token" not in item for item in listing["items"])
    ops = bearer(created["token"])
    assert (await client.get("/api/workspaces/any/sync-jobs", headers=ops)).status == 200
    assert (await client.delete(f"/api/admin/tokens/{created['id']}", headers=owner)).status == 403
    assert (await client.delete(f"/api/admin/tokens/{created['id']}", headers=admin)).status == 204
    assert (await client.get("/api/workspaces/any/sync-jobs", headers=ops)).status == 401


async def test_the_bootstrap_token_works_only_while_configured(aiohttp_client, db, clock, secrets):
    boot = bearer("let-me-in-please")
    client = await app_client(aiohttp_client, db, clock, secrets, syncjobs_bootstrap_token="let-me-in-please")
    assert (await client.get("/api/workspaces/anything/sync-jobs", headers=boot)).status == 200
    resp = await client.post("/api/admin/tokens", json={"name": "first"}, headers=boot)
    assert resp.status == 201
    assert await db.api_tokens.count_documents({"tokenHash": hash_token("let-me-in-please")}) == 0
    unset = await app_client(aiohttp_client, db, clock, secrets)
    assert (await unset.get("/api/workspaces/anything/sync-jobs", headers=boot)).status == 401
    assert (await unset.get("/api/admin/tokens", headers=boot)).status == 401


async def test_a_bootstrap_token_an_older_version_stored_is_deleted_at_start_up(
    aiohttp_client, db, clock, secrets
):
    await db.api_tokens.insert_one(
        {
            "tokenHash": hash_token("old-boot"),
            "admin": True,
            "name": "bootstrap",
            "prefix": "old-…",
            "workspaceId": None,
            "createdAt": clock.now(),
            "lastUsedAt": None,
        }
    )
    client = await app_client(aiohttp_client, db, clock, secrets)
    assert (await client.get("/api/admin/tokens", headers=bearer("old-boot"))).status == 401
    assert await db.api_tokens.count_documents({"name": "bootstrap"}) == 0


async def test_a_token_revoked_through_another_process_is_refused_within_a_second(
    aiohttp_client, db, clock, secrets, token_for
):
    headers = await token_for("ws-a")
    this = await app_client(aiohttp_client, db, clock, secrets)
    other = await app_client(aiohttp_client, db, clock, secrets)
    assert (await this.get("/api/workspaces/ws-a/sync-jobs", headers=headers)).status == 200
    owner_id = (await db.api_tokens.find_one({"workspaceId": "ws-a"}))["_id"]
    second = await token_for("ws-a")
    assert (await other.delete(f"/api/workspaces/ws-a/tokens/{owner_id}", headers=second)).status == 204
    # The grant this process read is served from memory for up to a second, not longer.
    await clock.advance(0.5, step=0.5)
    assert (await this.get("/api/workspaces/ws-a/sync-jobs", headers=headers)).status == 200
    await clock.advance(0.5, step=0.5)
    assert (await this.get("/api/workspaces/ws-a/sync-jobs", headers=headers)).status == 401


async def test_a_token_revoked_through_this_process_is_refused_at_once(client, db, token_for):
    owner = await token_for("ws-a")
    minted = await mint(client, owner, name="ci")
    assert (await client.get("/api/workspaces/ws-a/sync-jobs", headers=bearer(minted["token"]))).status == 200
    assert (await client.delete(f"/api/workspaces/ws-a/tokens/{minted['id']}", headers=owner)).status == 204
    assert (await client.get("/api/workspaces/ws-a/sync-jobs", headers=bearer(minted["token"]))).status == 401


async def test_the_grant_names_role_workspace_and_token(db, clock):
    store = TokenStore(db, bootstrap="boot")
    token, doc = await store.issue(workspace_id="ws-a", name="ci", role="operator", now=clock.now())
    grant = await store.authenticate(token, clock.now())
    assert (grant.role, grant.workspace_id, grant.admin, grant.token_id, grant.name) == (
        "operator",
        "ws-a",
        False,
        doc["_id"],
        "ci",
    )
    boot = await store.authenticate("boot", clock.now())
    assert (boot.role, boot.admin, boot.workspace_id, boot.token_id) == ("admin", True, None, None)
    # Tokens stored before roles existed keep what they could do: owner of their workspace.
    await db.api_tokens.insert_one(
        {
            "tokenHash": hash_token("legacy"),
            "workspaceId": "ws-b",
            "admin": False,
            "name": "old",
            "prefix": "x",
            "createdAt": clock.now(),
        }
    )
    assert (await store.authenticate("legacy", clock.now())).role == "owner"


async def test_a_token_past_its_rate_gets_429_with_retry_after_and_others_are_unaffected(
    client, token_for, clock
):
    noisy, quiet = await token_for("ws-a"), await token_for("ws-a")
    statuses = [
        (await client.get("/api/workspaces/ws-a/sync-jobs", headers=noisy)).status for _ in range(101)
    ]
    assert statuses[:100] == [200] * 100
    resp = await client.get("/api/workspaces/ws-a/sync-jobs", headers=noisy)
    assert resp.status == 429
    assert resp.headers["Retry-After"] == "1"
    assert (await resp.json())["error"]["code"] == "rate_limited"
    assert (await client.get("/api/workspaces/ws-a/sync-jobs", headers=quiet)).status == 200
    await clock.advance(1)
    refilled = [(await client.get("/api/workspaces/ws-a/sync-jobs", headers=noisy)).status for _ in range(51)]
    assert refilled == [200] * 50 + [429]


@pytest.mark.parametrize(
    ("setting", "what", "url", "body"),
    [
        (
            "workspace_max_data_sources",
            "data sources",
            "/api/workspaces/ws-a/data-sources",
            http_source_body(),
        ),
        (
            "workspace_max_destinations",
            "destinations",
            "/api/workspaces/ws-a/destinations",
            destination_body(),
        ),
        ("workspace_max_tokens", "tokens", "/api/workspaces/ws-a/tokens", {"name": "t"}),
    ],
)
async def test_creations_past_a_workspace_quota_are_409_naming_the_limit(
    aiohttp_client, db, clock, secrets, token_for, setting, what, url, body
):
    client = await app_client(aiohttp_client, db, clock, secrets, **{setting: 3})
    headers = await token_for("ws-a")
    statuses = [(await client.post(url, json=body, headers=headers)).status for _ in range(3)]
    resp = await client.post(url, json=body, headers=headers)
    assert resp.status == 409, statuses
    error = (await resp.json())["error"]
    assert (
        error["code"] == "quota_exceeded"
        and error["details"]["limit"] == setting
        and error["details"]["max"] == 3
    )
    assert what in error["message"]
    # Another workspace has its own quota.
    other = await token_for("ws-b")
    assert (await client.post(url.replace("ws-a", "ws-b"), json=body, headers=other)).status == 201


async def test_jobs_past_the_workspace_quota_are_409(aiohttp_client, db, clock, secrets, token_for):
    client = await app_client(aiohttp_client, db, clock, secrets, workspace_max_jobs=2)
    headers = await token_for("ws-a")
    source = await (
        await client.post("/api/workspaces/ws-a/data-sources", json=http_source_body(), headers=headers)
    ).json()
    dest = await (
        await client.post("/api/workspaces/ws-a/destinations", json=destination_body(), headers=headers)
    ).json()
    body = sync_job_body(dataSourceId=source["id"], destinationDatabaseId=dest["id"])
    for _ in range(2):
        assert (await client.post("/api/workspaces/ws-a/sync-jobs", json=body, headers=headers)).status == 201
    resp = await client.post("/api/workspaces/ws-a/sync-jobs", json=body, headers=headers)
    assert resp.status == 409
    assert (await resp.json())["error"]["details"]["limit"] == "workspace_max_jobs"


def test_quota_and_rate_defaults_are_the_documented_ones():
    settings = Settings(_env_file=None)
    assert (
        settings.workspace_max_jobs,
        settings.workspace_max_data_sources,
        settings.workspace_max_destinations,
        settings.workspace_max_tokens,
    ) == (1000, 100, 100, 50)
    assert (settings.api_rate_per_second, settings.api_rate_burst) == (50, 100)
