"""The dashboard's pages: server-rendered shells; each loads one small module that reads the JSON API with
the bearer token the browser keeps in sessionStorage (pages themselves need no token: they hold no data)."""

import asyncio
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from api.ui.keys import STREAMS_STOP
from api.ui.views import jobs_overview, jobs_stream, schedule_preview

HERE = Path(__file__).parent
DASHBOARD = "/api/workspaces/{workspaceId}/dashboard"
# Everything the pages load comes from this origin; data reaches the page only through textContent, and the
# policy forbids inline script so that a job name smuggling markup could not run even if it got through.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
# (path, template, title, navigation entry)
PAGES = [
    ("/ui/", "jobs.html", "Jobs", "jobs"),
    ("/ui/signin", "signin.html", "Sign in", None),
    ("/ui/jobs/{jobId}", "job.html", "Job", "jobs"),
    ("/ui/runs", "runs.html", "Runs", "runs"),
    ("/ui/resources", "resources.html", "Sources and destinations", "resources"),
    ("/ui/statistics", "statistics.html", "Statistics", "statistics"),
    ("/ui/admin", "admin.html", "Scheduler", "admin"),
]


def page_handler(template: str, title: str, section: str | None):
    async def handler(request: web.Request) -> web.Response:
        context = {"title": title, "section": section, "job_id": request.match_info.get("jobId", "")}
        return aiohttp_jinja2.render_template(template, request, context)

    return handler


async def to_jobs(_request: web.Request) -> web.Response:
    raise web.HTTPFound("/ui/")


async def secure_ui_responses(request: web.Request, response: web.StreamResponse) -> None:
    if request.path == "/" or request.path.startswith("/ui"):
        response.headers.update(SECURITY_HEADERS)


async def stop_streams(app: web.Application) -> None:
    app[STREAMS_STOP].set()


def add_dashboard(app: web.Application) -> None:
    """Serve the dashboard at / and /ui/..., and its JSON views under .../dashboard/."""
    aiohttp_jinja2.setup(
        app, loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=jinja2.select_autoescape()
    )
    app[STREAMS_STOP] = asyncio.Event()
    app.on_response_prepare.append(secure_ui_responses)
    app.on_shutdown.append(stop_streams)
    app.router.add_get("/", to_jobs)
    app.router.add_get("/ui", to_jobs)
    for path, template, title, section in PAGES:
        app.router.add_get(path, page_handler(template, title, section))
    app.router.add_static("/ui/static/", HERE / "static", name="dashboard_static", append_version=True)
    app.router.add_get(f"{DASHBOARD}/jobs", jobs_overview)
    app.router.add_get(f"{DASHBOARD}/stream", jobs_stream)
    app.router.add_get(f"{DASHBOARD}/schedule-preview", schedule_preview)
