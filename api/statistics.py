"""GET .../statistics?days=30 for a workspace or one of its jobs."""

from aiohttp import web

from api.keys import CLOCK, DB, JOBS
from api.sync_jobs import job_id_of
from models.statistics import execution_statistics, parse_days


async def workspace_statistics(request: web.Request) -> web.Response:
    body = await execution_statistics(
        request.app[DB],
        workspace_id=request.match_info["workspaceId"],
        now=request.app[CLOCK].now(),
        days=parse_days(request.query.get("days")),
    )
    return web.json_response(body)


async def job_statistics(request: web.Request) -> web.Response:
    workspace_id = request.match_info["workspaceId"]
    days = parse_days(request.query.get("days"))
    job = await request.app[JOBS].get(workspace_id, job_id_of(request))  # 404 for another workspace's job
    body = await execution_statistics(
        request.app[DB], workspace_id=workspace_id, job_id=job["_id"], now=request.app[CLOCK].now(), days=days
    )
    return web.json_response(body)
