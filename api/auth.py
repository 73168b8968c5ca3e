"""Bearer tokens, each valid for one workspace (or, for admin tokens, every workspace)."""

from aiohttp import web

from api.keys import GRANT, TOKEN_CACHE
from models.errors import Forbidden, Unauthenticated
from models.tokens import Grant


def bearer_token(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Send Authorization: Bearer <token>")
    return token.strip()


@web.middleware
async def auth_middleware(request: web.Request, handler):
    workspace_id = request.match_info.get("workspaceId")
    if workspace_id is not None:
        grant = await request.app[TOKEN_CACHE].authenticate(bearer_token(request))
        if grant is None:
            raise Unauthenticated("Unknown or revoked token")
        if not grant.allows(workspace_id):
            raise Forbidden(details={"workspaceId": workspace_id})
        request[GRANT] = grant
    return await handler(request)


def grant_of(request: web.Request) -> Grant:
    return request[GRANT]
