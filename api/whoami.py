"""GET /api/whoami: what the bearer token grants, so a client can show it and hide what it may not do."""

from aiohttp import web

from api.auth import grant_of


async def whoami(request: web.Request) -> web.Response:
    grant = grant_of(request)  # the auth middleware checked the token, as on every /api route
    # The shape of api.schemas.Whoami.
    return web.json_response(
        {"workspaceId": grant.workspace_id, "admin": grant.admin, "role": grant.role, "name": grant.name}
    )
