"""The route table: one list serves both aiohttp's router and the OpenAPI document."""

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from api import executions, sync_jobs, tokens, whoami
from api.resources import ResourceHandlers
from api.tokens import TokenRequest
from models.execution import ExecutionView
from models.resources import DATA_SOURCE, DESTINATION
from models.sync_job import SyncJobSpec, SyncJobView
from models.tokens import TokenView

WS = "/api/workspaces/{workspaceId}"
JOBS = f"{WS}/sync-jobs"
JOB = f"{JOBS}/{{jobId}}"


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Any
    summary: str
    body: Any = None
    response: Any = None
    list_of: bool = False
    statuses: tuple[int, ...] = field(default=(200,))


def resource_routes(kind, handlers: ResourceHandlers) -> list[Route]:
    base = f"{WS}/{kind.path}"
    one = f"{base}/{{resourceId}}"
    return [
        Route("GET", base, handlers.list, f"List {kind.label}s", response=kind.view, list_of=True),
        Route("POST", base, handlers.create, f"Create a {kind.label}", kind.spec, kind.view, statuses=(201,)),
        Route("GET", one, handlers.get, f"Get a {kind.label}", response=kind.view),
        Route("PUT", one, handlers.replace, f"Replace a {kind.label}", kind.spec, kind.view),
        Route("PATCH", one, handlers.patch, f"Merge-patch a {kind.label}", response=kind.view),
        Route("DELETE", one, handlers.delete, f"Delete a {kind.label} no job uses", statuses=(204,)),
    ]


ROUTES: list[Route] = [
    Route(
        "GET", JOBS, sync_jobs.list_jobs, "List the workspace's sync jobs", response=SyncJobView, list_of=True
    ),
    Route("POST", JOBS, sync_jobs.create_job, "Create a sync job", SyncJobSpec, SyncJobView, statuses=(201,)),
    Route("GET", JOB, sync_jobs.get_job, "Get a sync job", response=SyncJobView),
    Route("PUT", JOB, sync_jobs.replace_job, "Replace a sync job", SyncJobSpec, SyncJobView),
    Route("PATCH", JOB, sync_jobs.patch_job, "Merge-patch a sync job (RFC 7396)", response=SyncJobView),
    Route(
        "DELETE", JOB, sync_jobs.delete_job, "Delete a sync job, canceling its active run", statuses=(204,)
    ),
    Route("POST", f"{JOB}/toggle", sync_jobs.toggle_job, "Flip enabled", response=SyncJobView),
    Route(
        "POST", f"{JOB}/run", sync_jobs.run_job, "Queue a manual run", response=ExecutionView, statuses=(202,)
    ),
    Route("GET", f"{JOB}/status", sync_jobs.job_status, "Status, active run and next fire times"),
    Route(
        "GET",
        f"{JOB}/executions",
        executions.list_executions,
        "Run history, newest first",
        response=ExecutionView,
        list_of=True,
    ),
    Route(
        "GET",
        f"{JOB}/executions/{{executionId}}",
        executions.get_execution,
        "Get an execution",
        response=ExecutionView,
    ),
    Route(
        "POST",
        f"{JOB}/executions/{{executionId}}/cancel",
        executions.cancel_execution,
        "Cancel an execution",
        response=ExecutionView,
        statuses=(200, 202),
    ),
    Route(
        "POST",
        f"{WS}/tokens",
        tokens.create_token,
        "Create a token (shown once)",
        TokenRequest,
        TokenView,
        statuses=(201,),
    ),
    Route("GET", f"{WS}/tokens", tokens.list_tokens, "List tokens", response=TokenView, list_of=True),
    Route("DELETE", f"{WS}/tokens/{{tokenId}}", tokens.revoke_token, "Revoke a token", statuses=(204,)),
    *resource_routes(DATA_SOURCE, ResourceHandlers(DATA_SOURCE)),
    *resource_routes(DESTINATION, ResourceHandlers(DESTINATION)),
    Route("GET", "/api/whoami", whoami.whoami, "The workspace, role and name the bearer token grants"),
]


def add_routes(app: web.Application) -> None:
    from api.openapi import openapi_document

    async def openapi(_request: web.Request) -> web.Response:
        return web.json_response(openapi_document(ROUTES))

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.router.add_get("/api/openapi.json", openapi)
    app.router.add_get("/healthz", health)
    for route in ROUTES:
        app.router.add_route(route.method, route.path, route.handler)
