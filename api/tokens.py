"""Handlers for a workspace's tokens (/api/workspaces/{workspaceId}/tokens) and the admin tokens
(/api/admin/tokens): create (shown once), list, revoke. No token mints or revokes one above its own role."""

from aiohttp import web
from pydantic import Field

from api.auth import grant_of
from api.bodies import read_json, to_json, validate
from api.keys import CLOCK, SETTINGS, TOKEN_CACHE, TOKENS
from api.quotas import ensure_room
from models.documents import CamelModel, Name, parse_object_id
from models.errors import Forbidden
from models.tokens import RANK, Role, TokenNotFound, TokenView, role_of


class TokenRequest(CamelModel):
    name: Name = "api"
    # The least role by default: a token made for a dashboard or a script should ask for more if it needs it.
    role: Role = Field(default=Role.VIEWER, strict=False, description="Not above the creator's role.")


class AdminTokenRequest(CamelModel):
    name: Name = "admin"


def refuse_above(request: web.Request, role: str, verb: str) -> None:
    grant = grant_of(request)
    if RANK[role] > RANK[grant.role]:
        raise Forbidden(
            f"A {grant.role} token cannot {verb} a {role} token",
            details={"role": role, "yourRole": grant.role},
        )


def created(doc: dict, token: str) -> web.Response:
    # The only time the token is shown; only its hash is kept.
    return web.json_response({**to_json(TokenView, doc), "token": token}, status=201)


def token_id_of(request: web.Request):
    return parse_object_id(request.match_info["tokenId"], TokenNotFound)


async def create_token(request: web.Request) -> web.Response:
    workspace_id = request.match_info["workspaceId"]
    body = validate(TokenRequest, await read_json(request, required=False) or {})
    refuse_above(request, body.role, "create")
    store = request.app[TOKENS]
    ensure_room(request.app[SETTINGS], "tokens", await store.count(workspace_id))
    token, doc = await store.issue(
        workspace_id=workspace_id, name=body.name, role=body.role, now=request.app[CLOCK].now()
    )
    return created(doc, token)


async def list_tokens(request: web.Request) -> web.Response:
    docs = await request.app[TOKENS].list(request.match_info["workspaceId"])
    return web.json_response({"items": [to_json(TokenView, doc) for doc in docs]})


async def revoke_token(request: web.Request) -> web.Response:
    workspace_id = request.match_info["workspaceId"]
    token_id = token_id_of(request)
    store = request.app[TOKENS]
    refuse_above(request, role_of(await store.get(workspace_id, token_id)), "revoke")
    await store.revoke(workspace_id, token_id)
    request.app[TOKEN_CACHE].forget(token_id)
    return web.Response(status=204)


async def create_admin_token(request: web.Request) -> web.Response:
    body = validate(AdminTokenRequest, await read_json(request, required=False) or {})
    token, doc = await request.app[TOKENS].issue(
        workspace_id=None, name=body.name, admin=True, now=request.app[CLOCK].now()
    )
    return created(doc, token)


async def list_admin_tokens(request: web.Request) -> web.Response:
    docs = await request.app[TOKENS].list(None)
    return web.json_response({"items": [to_json(TokenView, doc) for doc in docs]})


async def revoke_admin_token(request: web.Request) -> web.Response:
    token_id = token_id_of(request)
    await request.app[TOKENS].revoke(None, token_id)
    request.app[TOKEN_CACHE].forget(token_id)
    return web.Response(status=204)
