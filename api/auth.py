"""Bearer tokens: who is asking (a Grant), whether the route's workspace and role allow it, and how often."""

from aiohttp import web

from api.keys import CLOCK, GRANT, RATE_LIMITER, TOKEN_CACHE
from api.roles import required_role
from models.errors import Forbidden, Unauthenticated
from models.tokens import Grant

# Routes under /api that answer without a token.
PUBLIC_PATHS = frozenset({"/api/openapi.json"})


def bearer_token(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Send Authorization: Bearer <token>")
    return token.strip()


def needs_token(request: web.Request) -> bool:
    # Unknown paths and wrong methods (match_info.http_exception) answer 404/405 without a token.
    match = request.match_info
    return (
        match.http_exception is None and request.path.startswith("/api/") and request.path not in PUBLIC_PATHS
    )


@web.middleware
async def auth_middleware(request: web.Request, handler):
    if needs_token(request):
        now = request.app[CLOCK].now()
        grant = await request.app[TOKEN_CACHE].authenticate(bearer_token(request), now)
        if grant is None:
            raise Unauthenticated("Unknown or revoked token")
        request.app[RATE_LIMITER].take(grant.token_id or grant.name, now)
        workspace_id = request.match_info.get("workspaceId")
        if workspace_id is not None and not grant.allows(workspace_id):
            raise Forbidden(details={"workspaceId": workspace_id})
        needed = required_role(request.method, request.match_info.route.resource.canonical)
        if not grant.at_least(needed):
            raise Forbidden(
                f"This needs the {needed} role; this token is {grant.role}",
                details={"requiredRole": needed, "role": grant.role},
            )
        request[GRANT] = grant
    return await handler(request)


def grant_of(request: web.Request) -> Grant:
    """The grant of the request's bearer token (set for every /api route but the public ones)."""
    return request[GRANT]


def require_admin(request: web.Request) -> Grant:
    """The request's grant when it is an admin's. The middleware requires one for /api/admin already; the
    handlers that decide what runs on the worker host (connectors) or whether anything runs (the scheduler)
    say so again themselves."""
    grant = grant_of(request)
    if not grant.admin:
        raise Forbidden("This needs an admin token")
    return grant
