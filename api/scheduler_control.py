"""Scheduler control: the admin view of the scheduler, pausing and resuming it everywhere (admin) or for one
workspace (that workspace's token). A pause is written, then the runs it catches in the queue end skipped
(models.execution_store says why in that order); whatever queues a run later checks the pause itself."""

from typing import Any

from aiohttp import web

from api.auth import require_admin
from api.keys import CLOCK, DB, EXECUTIONS, GRANT, SETTINGS
from models.scheduler_control import SchedulerControl
from models.scheduler_status import iso, scheduler_status


async def set_paused(
    request: web.Request, paused: bool, *, by: str, workspace_id: str | None = None
) -> dict[str, Any]:
    now = request.app[CLOCK].now()
    doc = await SchedulerControl(request.app[DB]).set_paused(
        paused, now=now, by=by, workspace_id=workspace_id
    )
    if paused:
        await request.app[EXECUTIONS].skip_queued_while_paused(workspace_id, now)
    return doc


async def get_scheduler(request: web.Request) -> web.Response:
    require_admin(request)
    body = await scheduler_status(
        request.app[DB], now=request.app[CLOCK].now(), renew_seconds=request.app[SETTINGS].renew_seconds
    )
    return web.json_response(body)


async def _set_global(request: web.Request, paused: bool) -> web.Response:
    grant = require_admin(request)
    await set_paused(request, paused, by=str(grant.token_id))
    return await get_scheduler(request)


async def pause_scheduler(request: web.Request) -> web.Response:
    return await _set_global(request, True)


async def resume_scheduler(request: web.Request) -> web.Response:
    return await _set_global(request, False)


async def _set_workspace(request: web.Request, paused: bool) -> web.Response:
    workspace_id = request.match_info["workspaceId"]
    doc = await set_paused(request, paused, by=str(request[GRANT].token_id), workspace_id=workspace_id)
    return web.json_response(
        {
            "workspaceId": workspace_id,
            "paused": doc["paused"],
            "changedAt": iso(doc["changedAt"]),
            # The whole scheduler may be paused as well; then nothing runs whatever this says.
            "schedulerPaused": await SchedulerControl(request.app[DB]).globally_paused(),
        }
    )


async def pause_workspace(request: web.Request) -> web.Response:
    return await _set_workspace(request, True)


async def resume_workspace(request: web.Request) -> web.Response:
    return await _set_workspace(request, False)
