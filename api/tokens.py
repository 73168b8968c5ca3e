"""Handlers for /api/workspaces/{workspaceId}/tokens: create (shown once), list, revoke."""

from typing import Annotated

from aiohttp import web
from pydantic import Field

from api.bodies import read_json, to_json, validate
from api.keys import CLOCK, TOKEN_CACHE, TOKENS
from models.documents import CamelModel, parse_object_id
from models.tokens import TokenNotFound, TokenView


class TokenRequest(CamelModel):
    name: Annotated[str, Field(min_length=1, max_length=200)] = "api"


async def create_token(request: web.Request) -> web.Response:
    workspace_id = request.match_info["workspaceId"]
    body = validate(TokenRequest, await read_json(request, required=False) or {})
    token, doc = await request.app[TOKENS].issue(
        workspace_id=workspace_id, name=body.name, now=request.app[CLOCK].now()
    )
    # The only time the token is shown; only its hash is kept.
    return web.json_response({**to_json(TokenView, doc), "token": token}, status=201)


async def list_tokens(request: web.Request) -> web.Response:
    docs = await request.app[TOKENS].list(request.match_info["workspaceId"])
    return web.json_response({"items": [to_json(TokenView, doc) for doc in docs]})


async def revoke_token(request: web.Request) -> web.Response:
    token_id = parse_object_id(request.match_info["tokenId"], TokenNotFound)
    await request.app[TOKENS].revoke(request.match_info["workspaceId"], token_id)
    request.app[TOKEN_CACHE].forget(token_id)
    return web.Response(status=204)
