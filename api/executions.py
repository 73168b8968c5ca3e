"""Handlers for a job's executions: history, one execution, and cancel requests."""

from aiohttp import web

from api.bodies import to_json
from api.keys import CLOCK, EXECUTIONS, JOBS
from api.sync_jobs import job_id_of
from models.documents import parse_object_id
from models.errors import ExecutionNotFound, ValidationFailed
from models.execution import ExecutionStatus, ExecutionView
from models.pagination import parse_limit

STATUSES = {status.value for status in ExecutionStatus}


def execution_id_of(request: web.Request):
    return parse_object_id(request.match_info["executionId"], ExecutionNotFound)


async def list_executions(request: web.Request) -> web.Response:
    workspace_id = request.match_info["workspaceId"]
    job_id = job_id_of(request)
    await request.app[JOBS].get(workspace_id, job_id)
    status = request.query.get("status")
    if status is not None and status not in STATUSES:
        raise ValidationFailed(
            "Invalid status filter",
            details=[{"field": "status", "message": f"one of {', '.join(sorted(STATUSES))}"}],
        )
    docs, next_cursor = await request.app[EXECUTIONS].list(
        workspace_id,
        job_id,
        status=status,
        limit=parse_limit(request.query.get("limit")),
        cursor=request.query.get("cursor"),
    )
    return web.json_response(
        {"items": [to_json(ExecutionView, doc) for doc in docs], "nextCursor": next_cursor}
    )


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
