"""GET /api/whoami: what the bearer token grants, so a client can show it and hide what it may not do."""

from aiohttp import web

from api.auth import bearer_token
from api.keys import CLOCK, DB, GRANT, TOKENS
from models.collections import API_TOKENS
from models.errors import Unauthenticated


async def whoami(request: web.Request) -> web.Response:
    # Where the auth middleware checks every /api path it has set the grant already; otherwise check here.
    grant = request.get(GRANT)
    if grant is None:
        grant = await request.app[TOKENS].authenticate(bearer_token(request), request.app[CLOCK].now())
    if grant is None:
        raise Unauthenticated("Unknown or revoked token")
    # Grants carry a role once workspace roles exist; a token from before them may do everything.
    role = "admin" if grant.admin else (getattr(grant, "role", None) or "owner")
    name = getattr(grant, "name", None)
    if name is None:
        doc = await request.app[DB][API_TOKENS].find_one({"_id": grant.token_id}, {"name": 1})
        name = (doc or {}).get("name", "")
    return web.json_response(
        {"workspaceId": grant.workspace_id, "admin": grant.admin, "role": role, "name": name}
    )
