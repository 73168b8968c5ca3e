"""Handlers for /api/workspaces/{workspaceId}/webhooks: CRUD, and each webhook's delivery log.

The signing secret is made here and shown once, in the answer to the create; it and the URL (whose path is
a credential for Slack and Discord) are sealed at rest like data-source secrets."""

import secrets
from typing import Any

from aiohttp import web

from api.bodies import read_model, read_object, to_json, validate
from api.etags import etag, expected_version
from api.keys import CLOCK, DB, SECRETS, SETTINGS
from api.merge_patch import merge_patch
from api.responses import page_response
from api.rewrite import rewrite
from models.collections import WEBHOOK_DELIVERIES, WEBHOOKS
from models.documents import READ_ONLY_FIELDS, parse_object_id
from models.errors import NotFound, ValidationFailed
from models.pagination import after_descending, page, parse_limit
from models.webhook import SECRET_PREFIX, DeliveryView, WebhookSpec, WebhookView, shown_url
from models.webhook_network import check_url, parse_allowed_networks
from models.workspace_store import WorkspaceStore


class WebhookNotFound(NotFound):
    """No such webhook in this workspace."""


def store(request: web.Request) -> WorkspaceStore:
    webhooks = WorkspaceStore(request.app[DB][WEBHOOKS])
    webhooks.not_found = WebhookNotFound
    return webhooks


def webhook_id_of(request: web.Request):
    return parse_object_id(request.match_info["webhookId"], WebhookNotFound)


def view(request: web.Request, doc: dict[str, Any]) -> dict[str, Any]:
    return to_json(WebhookView, {**doc, "url": shown_url(request.app[SECRETS].open(doc["url"]))})


def sealed_fields(request: web.Request, spec: WebhookSpec) -> dict[str, Any]:
    check_url(spec.url, parse_allowed_networks(request.app[SETTINGS].syncjobs_allowed_networks))
    fields = spec.model_dump(by_alias=True, mode="json")
    fields["url"] = request.app[SECRETS].seal(spec.url)
    return fields


async def list_webhooks(request: web.Request) -> web.Response:
    docs, next_cursor = await store(request).list(
        request.match_info["workspaceId"],
        limit=parse_limit(request.query.get("limit")),
        cursor=request.query.get("cursor"),
    )
    return web.json_response({"items": [view(request, doc) for doc in docs], "nextCursor": next_cursor})


async def create_webhook(request: web.Request) -> web.Response:
    workspace_id = request.match_info["workspaceId"]
    fields = sealed_fields(request, await read_model(request, WebhookSpec))
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    fields["secret"] = request.app[SECRETS].seal(secret)
    doc = await store(request).insert(workspace_id, fields, request.app[CLOCK].now())
    return web.json_response(
        {**view(request, doc), "secret": secret},
        status=201,
        headers={
            "ETag": etag(doc["version"]),
            "Location": f"/api/workspaces/{workspace_id}/webhooks/{doc['_id']}",
        },
    )


async def get_webhook(request: web.Request) -> web.Response:
    doc = await store(request).get(request.match_info["workspaceId"], webhook_id_of(request))
    return web.json_response(view(request, doc), headers={"ETag": etag(doc["version"])})


async def patch_webhook(request: web.Request) -> web.Response:
    patch = await read_object(request)
    read_only = sorted(set(patch) & {*READ_ONLY_FIELDS, "secret"})
    if read_only:
        raise ValidationFailed(
            "Read-only fields cannot be written",
            details=[{"field": f, "message": "read-only"} for f in read_only],
        )

    async def merged(current: dict[str, Any]) -> dict[str, Any]:
        fields = WebhookSpec.model_json_schema(by_alias=True)["properties"]
        editable = {key: current[key] for key in fields if key in current}
        editable["url"] = request.app[SECRETS].open(current["url"])
        return sealed_fields(request, validate(WebhookSpec, merge_patch(editable, patch)))

    doc = await rewrite(
        store(request),
        request.match_info["workspaceId"],
        webhook_id_of(request),
        wanted=expected_version(request),
        change=merged,
        now=request.app[CLOCK].now(),
    )
    return web.json_response(view(request, doc), headers={"ETag": etag(doc["version"])})


async def delete_webhook(request: web.Request) -> web.Response:
    await store(request).delete(
        request.match_info["workspaceId"], webhook_id_of(request), expected_version=expected_version(request)
    )
    return web.Response(status=204)


async def list_deliveries(request: web.Request) -> web.Response:
    """The webhook's delivery log, newest first: status, attempts, last status code and error."""
    workspace_id = request.match_info["workspaceId"]
    webhook = await store(request).get(workspace_id, webhook_id_of(request))
    limit = parse_limit(request.query.get("limit"))
    query = {
        "webhookId": webhook["_id"],
        "workspaceId": workspace_id,
        **after_descending(request.query.get("cursor"), "createdAt"),
    }
    if request.query.get("status"):
        query["status"] = request.query["status"]
    docs = (
        await request.app[DB][WEBHOOK_DELIVERIES]
        .find(query)
        .sort([("createdAt", -1), ("_id", -1)])
        .limit(limit + 1)
        .to_list(None)
    )
    docs, next_cursor = page(docs, limit, "createdAt")
    return page_response(DeliveryView, docs, next_cursor)
