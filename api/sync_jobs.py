"""Handlers for /api/workspaces/{workspaceId}/sync-jobs."""

from typing import Any

from aiohttp import web

from api.bodies import read_model, read_object, to_json, validate
from api.etags import check_version, etag, expected_version
from api.keys import CLOCK, DB, EXECUTIONS, JOBS
from api.merge_patch import merge_patch
from api.rewrite import rewrite
from models.documents import READ_ONLY_FIELDS, parse_object_id
from models.errors import SyncJobNotFound, ValidationFailed
from models.execution import ExecutionView
from models.pagination import parse_limit
from models.resources import DATA_SOURCE, DESTINATION
from models.schedule import next_fire_times
from models.scheduler_control import SchedulerControl
from models.sync_job import STATUS_FIELDS, SyncJobSpec, SyncJobView

NEXT_FIRE_TIMES = 5
EDITABLE_FIELDS = tuple(SyncJobSpec.model_json_schema(by_alias=True)["properties"])


def job_id_of(request: web.Request):
    return parse_object_id(request.match_info["jobId"], SyncJobNotFound)


def job_response(
    doc: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(
        to_json(SyncJobView, doc), status=status, headers={"ETag": etag(doc["version"]), **(headers or {})}
    )


async def list_jobs(request: web.Request) -> web.Response:
    docs, next_cursor = await request.app[JOBS].list(
        request.match_info["workspaceId"],
        limit=parse_limit(request.query.get("limit")),
        cursor=request.query.get("cursor"),
    )
    return web.json_response(
        {"items": [to_json(SyncJobView, doc) for doc in docs], "nextCursor": next_cursor}
    )


async def create_job(request: web.Request) -> web.Response:
    workspace_id = request.match_info["workspaceId"]
    spec = await read_model(request, SyncJobSpec)
    await check_references(request, workspace_id, spec)
    doc = await request.app[JOBS].create(workspace_id, spec, request.app[CLOCK].now())
    location = f"/api/workspaces/{workspace_id}/sync-jobs/{doc['_id']}"
    return job_response(doc, 201, {"Location": location})


async def get_job(request: web.Request) -> web.Response:
    return job_response(await request.app[JOBS].get(request.match_info["workspaceId"], job_id_of(request)))


async def replace_job(request: web.Request) -> web.Response:
    workspace_id = request.match_info["workspaceId"]
    job_id = job_id_of(request)
    spec = await read_model(request, SyncJobSpec)
    await check_references(request, workspace_id, spec)
    doc = await request.app[JOBS].update(
        workspace_id,
        job_id,
        spec.to_document(),
        request.app[CLOCK].now(),
        expected_version=expected_version(request),
    )
    return job_response(doc)


async def rewrite_job(request: web.Request, change) -> web.Response:
    doc = await rewrite(
        request.app[JOBS],
        request.match_info["workspaceId"],
        job_id_of(request),
        wanted=expected_version(request),
        change=change,
        now=request.app[CLOCK].now(),
    )
    return job_response(doc)


async def patch_job(request: web.Request) -> web.Response:
    patch = await read_object(request)
    read_only = sorted(set(patch) & {*STATUS_FIELDS, *READ_ONLY_FIELDS})
    if read_only:
        raise ValidationFailed(
            "Read-only fields cannot be written",
            details=[{"field": f, "message": "read-only"} for f in read_only],
        )

    async def merged(current: dict[str, Any]) -> dict[str, Any]:
        editable = {key: current[key] for key in EDITABLE_FIELDS}
        spec = validate(SyncJobSpec, merge_patch(editable, patch))
        await check_references(request, request.match_info["workspaceId"], spec)
        return spec.to_document()

    return await rewrite_job(request, merged)


async def delete_job(request: web.Request) -> web.Response:
    workspace_id = request.match_info["workspaceId"]
    job_id = job_id_of(request)
    wanted = expected_version(request)
    check_version(await request.app[JOBS].get(workspace_id, job_id), wanted)
    await request.app[EXECUTIONS].cancel_active_for_job(job_id, request.app[CLOCK].now())
    await request.app[JOBS].delete(workspace_id, job_id, expected_version=wanted)
    return web.Response(status=204)


async def toggle_job(request: web.Request) -> web.Response:
    async def flipped(current: dict[str, Any]) -> dict[str, Any]:
        return {"enabled": not current["enabled"]}

    return await rewrite_job(request, flipped)


async def run_job(request: web.Request) -> web.Response:
    workspace_id = request.match_info["workspaceId"]
    job = await request.app[JOBS].get(workspace_id, job_id_of(request))
    await SchedulerControl(request.app[DB]).refuse_if_paused(workspace_id)
    execution = await request.app[EXECUTIONS].queue_manual_run(job, request.app[CLOCK].now())
    location = f"/api/workspaces/{workspace_id}/sync-jobs/{job['_id']}/executions/{execution['_id']}"
    return web.json_response(
        {"executionId": str(execution["_id"]), "execution": to_json(ExecutionView, execution)},
        status=202,
        headers={"Location": location},
    )


async def job_status(request: web.Request) -> web.Response:
    job = await request.app[JOBS].get(request.match_info["workspaceId"], job_id_of(request))
    view = to_json(SyncJobView, job)
    active = await request.app[EXECUTIONS].active_for_job(job["_id"])
    running = active is not None and active["status"] == "running"
    schedule = job["schedule"]
    upcoming = next_fire_times(
        schedule["cron"], request.app[CLOCK].now(), schedule["timezone"], NEXT_FIRE_TIMES
    )
    body = {
        "jobId": view["id"],
        "enabled": job["enabled"],
        "version": job["version"],
        **{field: view.get(field) for field in STATUS_FIELDS},
        "scheduleLive": job.get("scheduleAppliedVersion") == job["version"],
        "running": running,
        "activeExecution": to_json(ExecutionView, active) if active else None,
        "schedule": schedule,
        "nextFireTimes": [moment.isoformat().replace("+00:00", "Z") for moment in upcoming],
    }
    return web.json_response(body, headers={"ETag": etag(job["version"])})


async def check_references(request: web.Request, workspace_id: str, spec: SyncJobSpec) -> None:
    """The data source and destination must exist in the job's own workspace."""
    problems = []
    for kind, value in ((DATA_SOURCE, spec.data_source_id), (DESTINATION, spec.destination_database_id)):
        if not await kind.store(request.app[DB]).exists(workspace_id, value):
            problems.append(
                {"field": kind.job_field, "message": f"no {kind.label} with this id in this workspace"}
            )
    if problems:
        raise ValidationFailed("The job names resources this workspace does not have", details=problems)
