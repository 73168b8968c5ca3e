"""The route table: one list serves both aiohttp's router and the OpenAPI document."""

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import TypeAdapter

from api import (
    connectors,
    executions,
    health,
    scheduler_control,
    statistics,
    sync_jobs,
    tokens,
    webhooks,
    whoami,
)
from api.resources import ResourceHandlers
from api.schemas import (
    CreatedToken,
    Cursors,
    Health,
    JobStatusView,
    ResourcePatch,
    RunAccepted,
    SchedulerView,
    Statistics,
    SyncJobPatch,
    WebhookPatch,
    Whoami,
    WorkspacePause,
)
from api.tokens import AdminTokenRequest, TokenRequest
from models.connectors import ConnectorSpec, ConnectorView
from models.execution import ExecutionView
from models.resources import DATA_SOURCE, DESTINATION
from models.sync_job import SyncJobSpec, SyncJobView
from models.tokens import TokenView
from models.webhook import DeliveryView, WebhookSpec, WebhookView

WS = "/api/workspaces/{workspaceId}"
JOBS = f"{WS}/sync-jobs"
JOB = f"{JOBS}/{{jobId}}"
ADMIN_TOKENS = "/api/admin/tokens"
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
    # Query parameters as (name, description); all optional strings.
    query: tuple[tuple[str, str], ...] = ()
    # Answered without a token.
    public: bool = False
    body_required: bool = True


PAGE = (("limit", "1 to 200, default 50"), ("cursor", "nextCursor of the previous page"))
HISTORY_FILTERS = (
    *PAGE,
    ("status", "queued, running, succeeded, failed, timed_out, canceled, abandoned or skipped"),
)
ENTITY = (("entity", "one entity's cursor only"),)
ANY_OBJECT = TypeAdapter(dict[str, Any])


def resource_routes(kind, handlers: ResourceHandlers) -> list[Route]:
    base = f"{WS}/{kind.path}"
    one = f"{base}/{{resourceId}}"
    return [
        Route(
            "GET", base, handlers.list, f"List {kind.label}s", response=kind.view, list_of=True, query=PAGE
        ),
        Route("POST", base, handlers.create, f"Create a {kind.label}", kind.spec, kind.view, statuses=(201,)),
        Route("GET", one, handlers.get, f"Get a {kind.label}", response=kind.view),
        Route("PUT", one, handlers.replace, f"Replace a {kind.label}", kind.spec, kind.view),
        Route("PATCH", one, handlers.patch, f"Merge-patch a {kind.label}", ResourcePatch, kind.view),
        Route("DELETE", one, handlers.delete, f"Delete a {kind.label} no job uses", statuses=(204,)),
    ]


ROUTES: list[Route] = [
    Route(
        "GET",
        JOBS,
        sync_jobs.list_jobs,
        "List the workspace's sync jobs",
        response=SyncJobView,
        list_of=True,
        query=PAGE,
    ),
    Route("POST", JOBS, sync_jobs.create_job, "Create a sync job", SyncJobSpec, SyncJobView, statuses=(201,)),
    Route("GET", JOB, sync_jobs.get_job, "Get a sync job", response=SyncJobView),
    Route(
        "PUT",
        JOB,
        sync_jobs.replace_job,
        "Replace a sync job: left-out fields take their defaults (named in a Warning header)",
        SyncJobSpec,
        SyncJobView,
    ),
    Route("PATCH", JOB, sync_jobs.patch_job, "Merge-patch a sync job (RFC 7396)", SyncJobPatch, SyncJobView),
    Route(
        "DELETE", JOB, sync_jobs.delete_job, "Delete a sync job, canceling its active run", statuses=(204,)
    ),
    Route("POST", f"{JOB}/toggle", sync_jobs.toggle_job, "Flip enabled", response=SyncJobView),
    Route("POST", f"{JOB}/enable", sync_jobs.enable_job, "Enable (idempotent)", response=SyncJobView),
    Route("POST", f"{JOB}/disable", sync_jobs.disable_job, "Disable (idempotent)", response=SyncJobView),
    Route(
        "POST",
        f"{JOB}/run",
        sync_jobs.run_job,
        "Queue a manual run; a disabled job is 409 job_disabled unless evenIfDisabled=true",
        response=RunAccepted,
        statuses=(202,),
        query=(("evenIfDisabled", "true runs a disabled job"),),
    ),
    Route(
        "GET",
        f"{JOB}/status",
        sync_jobs.job_status,
        "Status, active run and next fire times",
        response=JobStatusView,
    ),
    Route(
        "GET",
        f"{JOB}/cursors",
        sync_jobs.get_cursors,
        "The incremental position",
        response=Cursors,
        query=ENTITY,
    ),
    Route(
        "DELETE",
        f"{JOB}/cursors",
        sync_jobs.reset_cursors,
        "Forget the incremental position: the next run syncs from scratch",
        response=Cursors,
        query=ENTITY,
    ),
    Route(
        "GET",
        f"{JOB}/executions",
        executions.list_executions,
        "Run history, newest first (kept after the job is deleted, until retention)",
        response=ExecutionView,
        list_of=True,
        query=HISTORY_FILTERS,
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
        "GET",
        f"{WS}/executions",
        executions.list_workspace_executions,
        "Runs across the workspace's jobs, newest first",
        response=ExecutionView,
        list_of=True,
        query=(
            *HISTORY_FILTERS,
            ("jobId", "one job's runs"),
            ("trigger", "schedule, manual or retry"),
            ("from", "queued at or after this ISO 8601 time"),
            ("to", "queued before this ISO 8601 time"),
        ),
    ),
    Route(
        "POST",
        f"{WS}/tokens",
        tokens.create_token,
        "Create a token (shown once)",
        TokenRequest,
        CreatedToken,
        statuses=(201,),
        body_required=False,
    ),
    Route("GET", f"{WS}/tokens", tokens.list_tokens, "List tokens", response=TokenView, list_of=True),
    Route("DELETE", f"{WS}/tokens/{{tokenId}}", tokens.revoke_token, "Revoke a token", statuses=(204,)),
    Route(
        "POST",
        ADMIN_TOKENS,
        tokens.create_admin_token,
        "Create an admin token (shown once)",
        AdminTokenRequest,
        TokenView,
        statuses=(201,),
    ),
    Route(
        "GET", ADMIN_TOKENS, tokens.list_admin_tokens, "List admin tokens", response=TokenView, list_of=True
    ),
    Route(
        "DELETE",
        f"{ADMIN_TOKENS}/{{tokenId}}",
        tokens.revoke_admin_token,
        "Revoke an admin token",
        statuses=(204,),
    ),
    *resource_routes(DATA_SOURCE, ResourceHandlers(DATA_SOURCE)),
    *resource_routes(DESTINATION, ResourceHandlers(DESTINATION)),
    Route(
        "GET",
        "/api/admin/connectors",
        connectors.list_connectors,
        "List connectors (admin)",
        response=ConnectorView,
        list_of=True,
    ),
    Route(
        "POST",
        "/api/admin/connectors",
        connectors.create_connector,
        "Register a connector (admin)",
        ConnectorSpec,
        ConnectorView,
        statuses=(201,),
    ),
    Route(
        "GET",
        "/api/admin/connectors/{name}",
        connectors.get_connector,
        "Get a connector (admin)",
        response=ConnectorView,
    ),
    Route(
        "DELETE",
        "/api/admin/connectors/{name}",
        connectors.delete_connector,
        "Remove a connector (admin)",
        statuses=(204,),
    ),
    Route(
        "GET",
        f"{ADMIN}/scheduler",
        scheduler_control.get_scheduler,
        "The scheduler's state (admin)",
        response=SchedulerView,
    ),
    Route(
        "POST",
        f"{ADMIN}/scheduler/pause",
        scheduler_control.pause_scheduler,
        "Pause everything (admin)",
        response=SchedulerView,
    ),
    Route(
        "POST",
        f"{ADMIN}/scheduler/resume",
        scheduler_control.resume_scheduler,
        "Resume (admin)",
        response=SchedulerView,
    ),
    Route(
        "POST",
        f"{WS}/pause",
        scheduler_control.pause_workspace,
        "Pause the workspace's runs",
        response=WorkspacePause,
    ),
    Route(
        "POST",
        f"{WS}/resume",
        scheduler_control.resume_workspace,
        "Resume the workspace's runs",
        response=WorkspacePause,
    ),
    Route(
        "GET",
        f"{WS}/statistics",
        statistics.workspace_statistics,
        "Execution statistics over ?days=",
        response=Statistics,
    ),
    Route(
        "GET",
        f"{JOB}/statistics",
        statistics.job_statistics,
        "The job's execution statistics over ?days=",
        response=Statistics,
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
    Route("PATCH", HOOK, webhooks.patch_webhook, "Merge-patch a webhook", WebhookPatch, WebhookView),
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


async def openapi(_request: web.Request) -> web.Response:
    from api.openapi import openapi_document

    return web.json_response(openapi_document(ROUTES))


ROUTES += [
    Route("GET", "/healthz", health.healthz, "Liveness: the process answers", response=Health, public=True),
    Route(
        "GET",
        "/readyz",
        health.readyz,
        "Readiness: the database answers a ping (503 while it does not)",
        response=ANY_OBJECT,
        public=True,
    ),
    Route("GET", "/api/openapi.json", openapi, "This document", response=ANY_OBJECT, public=True),
    Route(
        "GET",
        "/api/whoami",
        whoami.whoami,
        "The workspace, role and name the bearer token grants",
        response=Whoami,
    ),
]


def add_routes(app: web.Application) -> None:
    # Prometheus' text format, not JSON: served beside the documented API, not part of it.
    app.router.add_get("/metrics", health.metrics)
    for route in ROUTES:
        app.router.add_route(route.method, route.path, route.handler)
