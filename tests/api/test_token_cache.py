"""Tokens are verified from a cache at most one second old; revoking is immediate where it happens."""

from datetime import timedelta


async def test_a_token_revoked_by_another_process_is_refused_within_a_second(client, ws, db, clock):
    assert (await client.get(ws.jobs, headers=ws.headers)).status == 200
    await db.api_tokens.delete_many({"workspaceId": "ws-a"})  # what another API process's revoke does
    clock.set(clock.now() + timedelta(milliseconds=900))
    assert (await client.get(ws.jobs, headers=ws.headers)).status == 200  # served from the cache
    clock.set(clock.now() + timedelta(milliseconds=100))
    assert (await client.get(ws.jobs, headers=ws.headers)).status == 401


async def test_a_token_revoked_through_this_process_is_refused_at_once(client, ws, token_for):
    created = await (
        await client.post("/api/workspaces/ws-a/tokens", json={"name": "ci"}, headers=ws.headers)
    ).json()
    own = {"Authorization": f"Bearer {created['token']}"}
    assert (await client.get(ws.jobs, headers=own)).status == 200
    assert (
        await client.delete(f"/api/workspaces/ws-a/tokens/{created['id']}", headers=ws.headers)
    ).status == 204
    assert (await client.get(ws.jobs, headers=own)).status == 401


async def test_a_clock_stepped_back_does_not_stretch_a_cached_grant(client, ws, db, clock):
    assert (await client.get(ws.jobs, headers=ws.headers)).status == 200
    await db.api_tokens.delete_many({"workspaceId": "ws-a"})
    clock.set(clock.now() - timedelta(hours=1))
    assert (await client.get(ws.jobs, headers=ws.headers)).status == 401
