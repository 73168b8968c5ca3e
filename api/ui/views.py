"""JSON views the dashboard reads: job rows with their recent runs, a live stream of them, and a schedule
preview. They live under /api/workspaces/{workspaceId}/dashboard/ so the same bearer-token check guards them
as every other workspace path."""

import json
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from api.bodies import to_json
from api.keys import CLOCK, DB, GRANT, JOBS, SETTINGS
from api.ui.keys import STREAMS_STOP
from api.ui.schedule_words import schedule_in_words
from models.cron import cron_problem, next_fire_time, next_fire_times, timezone_problem
from models.errors import Unauthenticated, ValidationFailed
from models.execution import ExecutionStatus
from models.job_activity import JobActivity
from models.pagination import MAX_LIMIT, parse_limit
from models.sync_job import SyncJobView

RECENT_RUNS = 20
PREVIEW_FIRE_TIMES = 5
MAX_CRON_LENGTH = 200
# Runs that say whether a job works; a skip or a cancel is what somebody wanted, so neither counts.
JUDGED = {
    ExecutionStatus.SUCCEEDED,
    ExecutionStatus.FAILED,
    ExecutionStatus.TIMED_OUT,
    ExecutionStatus.ABANDONED,
}
# A stream ends after this (the page reconnects), so a forgotten tab does not hold a handler forever.
STREAM_LIFETIME = timedelta(minutes=10)
HEARTBEAT = timedelta(seconds=15)


def workspace_of(request: web.Request) -> str:
    # The auth middleware checks every workspace path; refuse outright should a route ever escape it.
    if GRANT not in request:
        raise Unauthenticated()
    return request.match_info["workspaceId"]


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def run_summary(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(doc["_id"]),
        "status": doc["status"],
        "trigger": doc.get("trigger"),
        "queuedAt": iso(doc.get("queuedAt")),
        "startedAt": iso(doc.get("startedAt")),
        "finishedAt": iso(doc.get("finishedAt")),
        "durationMs": doc.get("durationMs"),
        "error": doc.get("error"),
    }


def success_rate(runs: list[dict[str, Any]]) -> float | None:
    judged = [run["status"] for run in runs if run["status"] in JUDGED]
    return judged.count(ExecutionStatus.SUCCEEDED.value) / len(judged) if judged else None


async def job_rows(request: web.Request, workspace_id: str, *, limit: int, cursor: str | None) -> dict:
    jobs, next_cursor = await request.app[JOBS].list(workspace_id, limit=limit, cursor=cursor)
    recent = await JobActivity(request.app[DB]).recent_runs(
        workspace_id, [job["_id"] for job in jobs], RECENT_RUNS
    )
    now = request.app[CLOCK].now()
    items = []
    for job in jobs:
        schedule = job["schedule"]
        runs = recent[job["_id"]]
        next_fire = next_fire_time(schedule["cron"], now, schedule["timezone"]) if job["enabled"] else None
        items.append(
            {
                "job": to_json(SyncJobView, job),
                "scheduleText": schedule_in_words(schedule["cron"], schedule["timezone"]),
                "nextFireAt": iso(next_fire),
                "recentRuns": [run_summary(run) for run in runs],
                "successRate": success_rate(runs),
            }
        )
    return {"items": items, "nextCursor": next_cursor, "generatedAt": iso(now)}


async def jobs_overview(request: web.Request) -> web.Response:
    """GET .../dashboard/jobs: one row per job with its schedule in words and its last 20 runs."""
    workspace_id = workspace_of(request)
    body = await job_rows(
        request,
        workspace_id,
        limit=parse_limit(request.query.get("limit", str(MAX_LIMIT))),
        cursor=request.query.get("cursor"),
    )
    return web.json_response(body)


async def jobs_stream(request: web.Request) -> web.StreamResponse:
    """GET .../dashboard/stream: server-sent events, a `jobs` event (the first page of rows) whenever the
    workspace's jobs or runs change. Read with fetch, since EventSource cannot send the bearer token."""
    workspace_id = workspace_of(request)
    clock = request.app[CLOCK]
    tick = request.app[SETTINGS].dashboard_refresh_seconds
    activity = JobActivity(request.app[DB])
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    started = last_write = clock.now()
    seen = None
    try:
        while not request.app[STREAMS_STOP].is_set() and clock.now() - started < STREAM_LIFETIME:
            marker = await activity.marker(workspace_id, jobs_shown=MAX_LIMIT)
            if marker != seen:
                rows = await job_rows(request, workspace_id, limit=MAX_LIMIT, cursor=None)
                await response.write(f"event: jobs\ndata: {json.dumps(rows)}\n\n".encode())
                seen, last_write = marker, clock.now()
            elif clock.now() - last_write >= HEARTBEAT:
                # A comment line: finds a vanished client, and keeps proxies from timing the stream out.
                await response.write(b": still here\n\n")
                last_write = clock.now()
            await clock.sleep(tick)
    except ConnectionResetError:
        pass  # the page went away
    return response


async def schedule_preview(request: web.Request) -> web.Response:
    """GET .../dashboard/schedule-preview?cron=&timezone=: the schedule in words and its next fire times,
    or the same 422 field errors a save would get."""
    workspace_of(request)
    cron = request.query.get("cron", "")
    timezone = request.query.get("timezone", "UTC")
    problems = []
    cron_error = (
        f"at most {MAX_CRON_LENGTH} characters" if len(cron) > MAX_CRON_LENGTH else cron_problem(cron)
    )
    if cron_error:
        problems.append({"field": "schedule.cron", "message": cron_error})
    zone_error = timezone_problem(timezone) if len(timezone) <= 64 else "at most 64 characters"
    if zone_error:
        problems.append({"field": "schedule.timezone", "message": zone_error})
    if problems:
        raise ValidationFailed("The schedule does not validate", details=problems)
    upcoming = next_fire_times(cron, request.app[CLOCK].now(), timezone, PREVIEW_FIRE_TIMES)
    return web.json_response(
        {
            "cron": cron.strip(),
            "timezone": timezone,
            "description": schedule_in_words(cron, timezone),
            "nextFireTimes": [iso(moment) for moment in upcoming],
        }
    )
