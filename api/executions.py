"""Handlers for a job's executions: history, one execution, and cancel requests."""

from datetime import UTC, datetime

from aiohttp import web
from bson import ObjectId

from api.bodies import to_json
from api.keys import CLOCK, EXECUTIONS, JOBS
from api.responses import page_response
from api.sync_jobs import job_id_of
from models.documents import parse_object_id
from models.errors import ExecutionNotFound, SyncJobNotFound, ValidationFailed
from models.execution import ExecutionStatus, ExecutionView, Trigger
from models.pagination import parse_limit

STATUSES = {status.value for status in ExecutionStatus}
TRIGGERS = {trigger.value for trigger in Trigger}


def execution_id_of(request: web.Request):
    return parse_object_id(request.match_info["executionId"], ExecutionNotFound)


def choice_filter(request: web.Request, name: str, allowed: set[str]) -> str | None:
    value = request.query.get(name)
    if value is not None and value not in allowed:
        raise ValidationFailed(
            f"Invalid {name} filter",
            details=[{"field": name, "message": f"one of {', '.join(sorted(allowed))}"}],
        )
    return value


async def list_executions(request: web.Request) -> web.Response:
    """A job's run history, newest first; still readable after the job is deleted, until retention ends."""
    workspace_id = request.match_info["workspaceId"]
    job_id = job_id_of(request)
    try:
        await request.app[JOBS].get(workspace_id, job_id)
    except SyncJobNotFound:
        if not await request.app[EXECUTIONS].any_for_job(workspace_id, job_id):
            raise
    docs, next_cursor = await request.app[EXECUTIONS].list(
        workspace_id,
        job_id,
        status=choice_filter(request, "status", STATUSES),
        limit=parse_limit(request.query.get("limit")),
        cursor=request.query.get("cursor"),
    )
    return executions_page(docs, next_cursor)


def executions_page(docs: list, next_cursor: str | None) -> web.Response:
    return page_response(ExecutionView, docs, next_cursor)


def moment_filter(request: web.Request, name: str) -> datetime | None:
    text = request.query.get(name)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ValidationFailed(
            f"Invalid {name}",
            details=[
                {"field": name, "message": "an ISO 8601 time with its offset, e.g. 2030-01-01T00:00:00Z"}
            ],
        )
    return moment.astimezone(UTC)


async def list_workspace_executions(request: web.Request) -> web.Response:
    """Runs across the workspace's jobs, newest first: ?status=&jobId=&trigger=&from=&to= (queuedAt,
    `from` inclusive, `to` exclusive), cursor-paginated."""
    job = request.query.get("jobId")
    if job is not None and not ObjectId.is_valid(job):
        raise ValidationFailed("Invalid jobId", details=[{"field": "jobId", "message": "a job id"}])
    docs, next_cursor = await request.app[EXECUTIONS].list(
        request.match_info["workspaceId"],
        ObjectId(job) if job is not None else None,
        status=choice_filter(request, "status", STATUSES),
        trigger=choice_filter(request, "trigger", TRIGGERS),
        queued_from=moment_filter(request, "from"),
        queued_to=moment_filter(request, "to"),
        limit=parse_limit(request.query.get("limit")),
        cursor=request.query.get("cursor"),
    )
    return executions_page(docs, next_cursor)


async def get_execution(request: web.Request) -> web.Response:
    doc = await request.app[EXECUTIONS].get(
        request.match_info["workspaceId"], job_id_of(request), execution_id_of(request)
    )
    return web.json_response(to_json(ExecutionView, doc))


async def cancel_execution(request: web.Request) -> web.Response:
    """A queued execution is canceled at once (200); a running one gets a request the worker acts on (202)."""
    doc = await request.app[EXECUTIONS].request_cancel(
        request.match_info["workspaceId"],
        job_id_of(request),
        execution_id_of(request),
        request.app[CLOCK].now(),
    )
    status = 200 if doc["status"] == ExecutionStatus.CANCELED.value else 202
    return web.json_response(to_json(ExecutionView, doc), status=status)
