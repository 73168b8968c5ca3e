"""Handlers for data sources and destinations: one set of handlers, parametrized by the kind of resource."""

from aiohttp import web

from api.bodies import read_object, validate
from api.etags import etag, expected_version
from api.keys import CLOCK, CONNECTORS, DB, JOBS, SECRETS, SETTINGS
from api.merge_patch import merge_patch
from api.quotas import ensure_room
from api.read_only import without_read_only
from api.rewrite import rewrite
from models.documents import READ_ONLY_FIELDS, parse_object_id
from models.errors import Conflict, ValidationFailed
from models.pagination import parse_limit
from models.resources import ResourceKind


class ResourceHandlers:
    def __init__(self, kind: ResourceKind):
        self.kind = kind

    def _store(self, request: web.Request):
        return self.kind.store(request.app[DB])

    def _id(self, request: web.Request):
        return parse_object_id(request.match_info["resourceId"], self.kind.not_found)

    def _json(self, request: web.Request, doc: dict) -> dict:
        return self._shown(self.kind.shown(doc, request.app[SECRETS]))

    def _shown(self, masked: dict) -> dict:
        # Only the fields the document has: a view lists every type's fields, and an http source shown with
        # "argv": null could not be sent back as it was shown.
        view = self.kind.view.model_validate(masked)
        return view.model_dump(by_alias=True, mode="json", exclude_unset=True)

    def _response(self, request: web.Request, doc: dict, status: int = 200, headers=None) -> web.Response:
        return web.json_response(
            self._json(request, doc), status=status, headers={"ETag": etag(doc["version"]), **(headers or {})}
        )

    async def _fields(self, request: web.Request, data: dict) -> dict:
        read_only = sorted(set(data) & READ_ONLY_FIELDS)
        if read_only:
            raise ValidationFailed(
                "Read-only fields cannot be written",
                details=[{"field": f, "code": "read_only", "message": "read-only"} for f in read_only],
            )
        fields = validate(self.kind.spec, data).model_dump(by_alias=True, mode="json")
        if fields["type"] == "command":
            await request.app[CONNECTORS].check_source(fields)
        return fields

    async def list(self, request: web.Request) -> web.Response:
        docs, next_cursor = await self._store(request).list(
            request.match_info["workspaceId"],
            limit=parse_limit(request.query.get("limit")),
            cursor=request.query.get("cursor"),
        )
        return web.json_response(
            {"items": [self._json(request, doc) for doc in docs], "nextCursor": next_cursor}
        )

    async def create(self, request: web.Request) -> web.Response:
        workspace_id = request.match_info["workspaceId"]
        fields = await self._fields(request, await read_object(request))
        fields = self.kind.seal(fields, request.app[SECRETS])
        ensure_room(
            request.app[SETTINGS], f"{self.kind.label}s", await self._store(request).count(workspace_id)
        )
        doc = await self._store(request).insert(workspace_id, fields, request.app[CLOCK].now())
        location = f"/api/workspaces/{workspace_id}/{self.kind.path}/{doc['_id']}"
        return self._response(request, doc, 201, {"Location": location})

    async def get(self, request: web.Request) -> web.Response:
        doc = await self._store(request).get(request.match_info["workspaceId"], self._id(request))
        return self._response(request, doc)

    async def replace(self, request: web.Request) -> web.Response:
        return await self._write(request, lambda current, body: body)

    async def patch(self, request: web.Request) -> web.Response:
        return await self._write(request, merge_patch)

    async def _write(self, request: web.Request, combine) -> web.Response:
        body = await read_object(request)
        secrets = request.app[SECRETS]

        async def changed(current: dict) -> dict:
            shown = self.kind.masked(current, secrets)
            editable = {key: value for key, value in shown.items() if key not in READ_ONLY_FIELDS}
            # What GET showed may come back: read-only fields equal to the stored ones are dropped here.
            writable = without_read_only(
                body, self._shown(self.kind.shown(current, secrets)), READ_ONLY_FIELDS
            )
            fields = await self._fields(request, combine(editable, writable))
            fields = self.kind.seal(fields, secrets, previous=current)
            # Fields of the old type that the new body leaves out must go, not linger.
            removed = {key: None for key in current if key not in fields and key not in READ_ONLY_FIELDS}
            return {**removed, **fields}

        doc = await rewrite(
            self._store(request),
            request.match_info["workspaceId"],
            self._id(request),
            wanted=expected_version(request),
            change=changed,
            now=request.app[CLOCK].now(),
        )
        return self._response(request, doc)

    async def delete(self, request: web.Request) -> web.Response:
        workspace_id = request.match_info["workspaceId"]
        resource_id = self._id(request)
        await self._store(request).get(workspace_id, resource_id)
        users = await request.app[JOBS].using(workspace_id, self.kind.job_field, str(resource_id))
        if users:
            raise Conflict(f"Sync jobs still use this {self.kind.label}", details={"syncJobIds": users})
        await self._store(request).delete(
            workspace_id, resource_id, expected_version=expected_version(request)
        )
        return web.Response(status=204)
