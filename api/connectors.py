"""Admin routes for the connector catalog: only an admin token may say which programs sources run."""

from aiohttp import web

from api.auth import require_admin
from api.bodies import read_model, to_json
from api.keys import CLOCK, CONNECTORS
from models.connectors import ConnectorSpec, ConnectorView


async def list_connectors(request: web.Request) -> web.Response:
    require_admin(request)
    items = [to_json(ConnectorView, entry) for entry in await request.app[CONNECTORS].list()]
    return web.json_response({"items": items, "nextCursor": None})


async def create_connector(request: web.Request) -> web.Response:
    require_admin(request)
    spec = await read_model(request, ConnectorSpec)
    entry = await request.app[CONNECTORS].create(spec, request.app[CLOCK].now())
    return web.json_response(
        to_json(ConnectorView, entry), status=201, headers={"Location": f"/api/admin/connectors/{spec.name}"}
    )


async def get_connector(request: web.Request) -> web.Response:
    require_admin(request)
    entry = await request.app[CONNECTORS].get(request.match_info["name"])
    return web.json_response(to_json(ConnectorView, entry))


async def delete_connector(request: web.Request) -> web.Response:
    require_admin(request)
    await request.app[CONNECTORS].delete(request.match_info["name"])
    return web.Response(status=204)
