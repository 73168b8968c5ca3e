"""Handlers for /api/workspaces/{workspaceId}/sync-jobs."""

from typing import Any

from aiohttp import web

from api.bodies import read_model, read_object, to_json, validate
from api.etags import check_version, etag, expected_version
from api.keys import CLOCK, DB, EXECUTIONS, JOBS, SETTINGS
from api.merge_patch import merge_patch
from api.quotas import ensure_room
from api.read_only import without_read_only
from api.responses import json_response, page_response, view_response
from api.rewrite import rewrite
from models.cron import upcoming_fire_times, zone_of
from models.documents import READ_ONLY_FIELDS, parse_object_id
from models.errors import Conflict, JobDisabled, SyncJobNotFound, ValidationFailed
from models.execution import ExecutionStatus, ExecutionView
from models.pagination import parse_limit
from models.resources import DATA_SOURCE, DESTINATION
from models.scheduler_control import SchedulerControl
from models.sync_job import STATUS_FIELDS, UNSHOWN_JOB_FIELDS, SyncJobSpec, SyncJobView
from models.worker_fleet import waiting_for

NEXT_FIRE_TIMES = 5
JOB_READ_ONLY = {*STATUS_FIELDS, *READ_ONLY_FIELDS}
EDITABLE_FIELDS = tuple(SyncJobSpec.model_json_schema(by_alias=True)["properties"])


def job_id_of(request: web.Request):
    return parse_object_id(request.match_info["jobId"], SyncJobNotFound)


def job_response(
    doc: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return view_response(
        SyncJobView, doc, status=status, headers={"ETag": etag(doc["version"]), **(headers or {})}
    )


async def list_jobs(request: web.Request) -> web.Response:
    docs, next_cursor = await request.app[JOBS].list(
        request.match_info["workspaceId"],
        limit=parse_limit(request.query.get("limit")),
        cursor=request.query.get("cursor"),
        projection=UNSHOWN_JOB_FIELDS,
    )
    return page_response(SyncJobView, docs, next_cursor)


async def create_job(request: web.Request) -> web.Response:
    workspace_id = request.match_info["workspaceId"]
    spec = await read_model(request, SyncJobSpec)
    ensure_room(request.app[SETTINGS], "sync jobs", await request.app[JOBS].count(workspace_id))
    await check_references(request, workspace_id, spec)
    doc = await request.app[JOBS].create(workspace_id, spec, request.app[CLOCK].now())
    location = f"/api/workspaces/{workspace_id}/sync-jobs/{doc['_id']}"
    return job_response(doc, 201, {"Location": location})


async def get_job(request: web.Request) -> web.Response:
    return job_response(
        await request.app[JOBS].get(request.match_info["workspaceId"], job_id_of(request), UNSHOWN_JOB_FIELDS)
    )


async def replace_job(request: web.Request) -> web.Response:
    """PUT replaces the whole spec: a field left out takes its default, and the answer's `Warning` header
    names each stored setting that changed that way. Read-only fields may be sent back as GET showed them."""
    body = await read_object(request)
    reset: list[str] = []

    async def replaced(current: dict[str, Any]) -> dict[str, Any]:
        spec = validate(SyncJobSpec, job_without_read_only(body, current), now=request.app[CLOCK].now())
        await check_references(request, request.match_info["workspaceId"], spec)
        fields = spec.to_document()
        reset[:] = [key for key in EDITABLE_FIELDS if key not in body and current.get(key) != fields[key]]
        return fields

    response = await rewrite_job(request, replaced)
    if reset:
        response.headers["Warning"] = (
            f'299 syncjobs "PUT replaces the whole job: left out, these were reset to their defaults: '
            f'{", ".join(reset)}"'
        )
    return response


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


def job_without_read_only(body: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    if not set(body) & JOB_READ_ONLY:
        return body
    return without_read_only(body, to_json(SyncJobView, current), JOB_READ_ONLY)


async def patch_job(request: web.Request) -> web.Response:
    patch = await read_object(request)

    async def merged(current: dict[str, Any]) -> dict[str, Any]:
        editable = {key: current.get(key) for key in EDITABLE_FIELDS}
        body = merge_patch(editable, job_without_read_only(patch, current))
        spec = validate(SyncJobSpec, body, now=request.app[CLOCK].now())
        await check_references(request, request.match_info["workspaceId"], spec)
        return spec.to_document()

    return await rewrite_job(request, merged)


async def delete_job(request: web.Request) -> web.Response:
    """The job goes; its executions stay readable until retention ends, each carrying the job's last state."""
    workspace_id = request.match_info["workspaceId"]
    job_id = job_id_of(request)
    wanted = expected_version(request)
    job = await request.app[JOBS].get(workspace_id, job_id)
    check_version(job, wanted)
    now = request.app[CLOCK].now()
    await request.app[EXECUTIONS].cancel_active_for_job(job_id, now)
    await request.app[JOBS].delete(workspace_id, job_id, expected_version=wanted)
    # After the delete: a delete refused (412) must leave no "deleted" mark on a live job's history.
    await request.app[EXECUTIONS].keep_deleted_job(job, now)
    return web.Response(status=204)


async def toggle_job(request: web.Request) -> web.Response:
    async def flipped(current: dict[str, Any]) -> dict[str, Any]:
        return {"enabled": not current["enabled"]}

    return await rewrite_job(request, flipped)


async def set_enabled(request: web.Request, enabled: bool) -> web.Response:
    """Idempotent: a job already in the wanted state is answered as it is, its version unchanged."""
    current = await request.app[JOBS].get(request.match_info["workspaceId"], job_id_of(request))
    check_version(current, expected_version(request))
    if current["enabled"] == enabled:
        return job_response(current)

    async def switched(_current: dict[str, Any]) -> dict[str, Any]:
        return {"enabled": enabled}

    return await rewrite_job(request, switched)


async def enable_job(request: web.Request) -> web.Response:
    return await set_enabled(request, True)


async def disable_job(request: web.Request) -> web.Response:
    return await set_enabled(request, False)


async def run_job(request: web.Request) -> web.Response:
    """Queue a manual run. A disabled job answers 409 `job_disabled` unless `?evenIfDisabled=true`."""
    workspace_id = request.match_info["workspaceId"]
    job = await request.app[JOBS].get(workspace_id, job_id_of(request))
    await SchedulerControl(request.app[DB]).refuse_if_paused(workspace_id)
    if not job["enabled"] and request.query.get("evenIfDisabled", "").lower() != "true":
        raise JobDisabled(details={"jobId": str(job["_id"]), "evenIfDisabled": "true runs it anyway"})
    execution = await request.app[EXECUTIONS].queue_manual_run(job, request.app[CLOCK].now())
    location = f"/api/workspaces/{workspace_id}/sync-jobs/{job['_id']}/executions/{execution['_id']}"
    return web.json_response(
        {"executionId": str(execution["_id"]), "execution": to_json(ExecutionView, execution)},
        status=202,
        headers={"Location": location},
    )


def fire_time_json(moment, zone: str) -> dict[str, str]:
    return {
        "utc": moment.isoformat().replace("+00:00", "Z"),
        "local": moment.astimezone(zone_of(zone)).isoformat(),
    }


async def job_status(request: web.Request) -> web.Response:
    job = await request.app[JOBS].get(
        request.match_info["workspaceId"], job_id_of(request), UNSHOWN_JOB_FIELDS
    )
    # The view re-checks nothing (StoredSchedule), so a schedule stored before today's checks still shows.
    view = to_json(SyncJobView, job)
    active = await request.app[EXECUTIONS].active_for_job(job["_id"])
    running = active is not None and active["status"] == "running"
    schedule = job["schedule"]
    # A disabled job fires at no time; listing times it will not fire at would say otherwise.
    upcoming = scheduled_fire_times(schedule, request.app[CLOCK].now()) if job["enabled"] else []
    body = {
        "jobId": view["id"],
        "enabled": job["enabled"],
        "version": job["version"],
        **{field: view.get(field) for field in STATUS_FIELDS},
        "scheduleLive": job.get("scheduleAppliedVersion") == job["version"],
        "running": running,
        "activeExecution": await active_view(request, active) if active else None,
        "schedule": view["schedule"],
        "nextFireTimes": [fire_time_json(moment, schedule["timezone"]) for moment in upcoming],
    }
    return json_response(body, headers={"ETag": etag(job["version"])})


async def active_view(request: web.Request, active: dict[str, Any]) -> dict[str, Any]:
    """The job's queued or running execution; a queued one says what it waits for when no live worker can
    take it."""
    reason = await waiting_for(
        request.app[DB],
        active,
        now=request.app[CLOCK].now(),
        renew_seconds=request.app[SETTINGS].renew_seconds,
    )
    return to_json(ExecutionView, {**active, "waitingFor": reason})


def scheduled_fire_times(schedule: dict[str, Any], now) -> list:
    """The next fire times; none for a schedule stored before its zone or cron was refused (`America`,
    `30 1 * 3 L0` in Europe/London): status shows that rather than failing."""
    try:
        return upcoming_fire_times(schedule["cron"], now, schedule["timezone"], NEXT_FIRE_TIMES)
    except (LookupError, ValueError, OSError):
        return []


def entity_of(request: web.Request) -> str | None:
    entity = request.query.get("entity")
    if entity is not None and (not entity or "." in entity or entity.startswith("$")):
        raise ValidationFailed(
            "Invalid entity",
            details=[{"field": "entity", "message": "an entity name (no '.', no leading '$')"}],
        )
    return entity


async def get_cursors(request: web.Request) -> web.Response:
    """The job's incremental position: the saved cursor of each entity (or of `?entity=`)."""
    job = await request.app[JOBS].get(request.match_info["workspaceId"], job_id_of(request))
    cursors = job.get("cursors") or {}
    entity = entity_of(request)
    if entity is not None:
        cursors = {entity: cursors[entity]} if entity in cursors else {}
    return web.json_response({"cursors": cursors})


async def reset_cursors(request: web.Request) -> web.Response:
    """Forget the incremental position (of every entity, or of `?entity=`): the next run syncs from scratch.
    Refused while a run is in progress, since its success would write a cursor back."""
    workspace_id = request.match_info["workspaceId"]
    job_id = job_id_of(request)
    entity = entity_of(request)
    await request.app[JOBS].get(workspace_id, job_id)
    active = await request.app[EXECUTIONS].active_for_job(job_id)
    if active is not None and active["status"] == ExecutionStatus.RUNNING.value:
        raise Conflict(
            "A run in progress would write its cursor back; reset after it ends",
            details={"executionId": str(active["_id"])},
        )
    job = await request.app[JOBS].reset_cursors(workspace_id, job_id, entity)
    return web.json_response({"cursors": job.get("cursors") or {}})


async def check_references(request: web.Request, workspace_id: str, spec: SyncJobSpec) -> None:
    """The data source and destination must exist in the job's own workspace, and the entities the job
    names must be ones its source declares (an http source declares them; a command source does not)."""
    db = request.app[DB]
    problems = []
    source = await DATA_SOURCE.store(db).find(workspace_id, spec.data_source_id, {"entities.name": 1})
    destination = await DESTINATION.store(db).exists(workspace_id, spec.destination_database_id)
    for kind, found in ((DATA_SOURCE, source is not None), (DESTINATION, destination)):
        if not found:
            problems.append(
                {"field": kind.job_field, "message": f"no {kind.label} with this id in this workspace"}
            )
    declared = [entity["name"] for entity in (source or {}).get("entities") or []]
    if declared and spec.entities is not None:
        for position, name in enumerate(spec.entities):
            if name not in declared:
                problems.append(
                    {
                        "field": f"entities.{position}",
                        "message": f"the data source declares no entity {name!r}; "
                        f"it has {', '.join(declared)}",
                    }
                )
    if problems:
        raise ValidationFailed("The job names resources this workspace does not have", details=problems)
