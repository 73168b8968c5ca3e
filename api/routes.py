"""The route table: one list serves both aiohttp's router and the OpenAPI document."""

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from api import executions, health, scheduler_control, statistics, sync_jobs, tokens, webhooks
from api.resources import ResourceHandlers
from api.tokens import TokenRequest
from models.execution import ExecutionView
from models.resources import DATA_SOURCE, DESTINATION
from models.sync_job import SyncJobSpec, SyncJobView
from models.tokens import TokenView
from models.webhook import DeliveryView, WebhookSpec, WebhookView

WS = "/api/workspaces/{workspaceId}"
JOBS = f"{WS}/sync-jobs"
JOB = f"{JOBS}/{{jobId}}"
ADMIN = "/api/admin"
HOOKS = f"{WS}/webhooks"
HOOK = f"{HOOKS}/{{webhookId}}"


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
    Route("GET", f"{ADMIN}/scheduler", scheduler_control.get_scheduler, "The scheduler's state (admin)"),
    Route("POST", f"{ADMIN}/scheduler/pause", scheduler_control.pause_scheduler, "Pause everything (admin)"),
    Route("POST", f"{ADMIN}/scheduler/resume", scheduler_control.resume_scheduler, "Resume (admin)"),
    Route("POST", f"{WS}/pause", scheduler_control.pause_workspace, "Pause the workspace's runs"),
    Route("POST", f"{WS}/resume", scheduler_control.resume_workspace, "Resume the workspace's runs"),
    Route("GET", f"{WS}/statistics", statistics.workspace_statistics, "Execution statistics over ?days="),
    Route(
        "GET", f"{JOB}/statistics", statistics.job_statistics, "The job's execution statistics over ?days="
    ),
    Route("GET", HOOKS, webhooks.list_webhooks, "List webhooks", response=WebhookView, list_of=True),
    Route(
        "POST",
        HOOKS,
        webhooks.create_webhook,
        "Create a webhook (its secret shown once)",
        WebhookSpec,
        WebhookView,
        statuses=(201,),
    ),
    Route("GET", HOOK, webhooks.get_webhook, "Get a webhook", response=WebhookView),
    Route("PATCH", HOOK, webhooks.patch_webhook, "Merge-patch a webhook", response=WebhookView),
    Route("DELETE", HOOK, webhooks.delete_webhook, "Delete a webhook", statuses=(204,)),
    Route(
        "GET",
        f"{HOOK}/deliveries",
        webhooks.list_deliveries,
        "The webhook's delivery log, newest first",
        response=DeliveryView,
        list_of=True,
    ),
]


def add_routes(app: web.Application) -> None:
    from api.openapi import openapi_document

    async def openapi(_request: web.Request) -> web.Response:
        return web.json_response(openapi_document(ROUTES))

    app.router.add_get("/api/openapi.json", openapi)
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/metrics", health.metrics)
    for route in ROUTES:
        app.router.add_route(route.method, route.path, route.handler)
