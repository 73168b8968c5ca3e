"""GET /api/whoami: what a token grants, for a client to show and to hide what it may not do."""


async def test_workspace_token_names_its_workspace_role_and_name(client, token_for):
    resp = await client.get("/api/whoami", headers=await token_for("ws-a"))
    assert resp.status == 200
    assert await resp.json() == {"workspaceId": "ws-a", "admin": False, "role": "owner", "name": "test"}


async def test_admin_token_has_no_workspace_and_the_admin_role(client, token_for):
    resp = await client.get("/api/whoami", headers=await token_for(admin=True))
    body = await resp.json()
    assert (body["workspaceId"], body["admin"], body["role"]) == (None, True, "admin")


async def test_missing_or_unknown_token_is_401(client):
    assert (await client.get("/api/whoami")).status == 401
    resp = await client.get("/api/whoami", headers={"Authorization": "Bearer sjt_made_up"})
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "unauthenticated"
