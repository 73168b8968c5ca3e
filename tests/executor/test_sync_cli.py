"""The built-in HTTP connector against a local aiohttp server."""

import io
import json

import pytest
from aiohttp import web

from executor.protocol import Log, Record, Result, State, parse_line
from executor.sync_cli import HttpSync, SyncFailed, retry_after_seconds

# The test servers listen on loopback, which the network policy refuses unless allowed.
LOOPBACK = ["127.0.0.0/8", "::1/128"]
PEOPLE = [{"id": i, "name": f"p{i}", "updated": f"2030-01-{i + 1:02d}"} for i in range(7)]


def make_app(calls: list) -> web.Application:
    async def by_page(request):
        calls.append(dict(request.query))
        page, size = int(request.query["page"]), int(request.query["limit"])
        return web.json_response({"data": {"items": PEOPLE[(page - 1) * size : page * size]}})

    async def by_offset(request):
        offset, size = int(request.query["offset"]), int(request.query["limit"])
        return web.json_response(PEOPLE[offset : offset + size])

    async def by_cursor(request):
        start = int(request.query.get("cursor", 0))
        chunk = PEOPLE[start : start + 3]
        return web.json_response(
            {"rows": chunk, "meta": {"next": str(start + 3) if start + 3 < len(PEOPLE) else None}}
        )

    async def by_link(request):
        start = int(request.query.get("start", 0))
        headers = {}
        if start + 3 < len(PEOPLE):
            headers["Link"] = f'<{request.url.with_query(start=start + 3)}>; rel="next"'
        return web.json_response(PEOPLE[start : start + 3], headers=headers)

    async def needs_auth(request):
        if request.headers.get("Authorization") != "Bearer s3cret":
            return web.json_response({"error": "no"}, status=401)
        return web.json_response(PEOPLE[:2])

    async def flaky(request):
        calls.append("flaky")
        if len(calls) == 1:
            return web.Response(status=429, headers={"Retry-After": "0"})
        if len(calls) == 2:
            return web.Response(status=503)
        return web.json_response(PEOPLE[:1])

    async def broken(request):
        return web.Response(status=500)

    async def not_json(request):
        return web.Response(text="<html>oops</html>")

    async def since(request):
        calls.append(dict(request.query))
        return web.json_response(PEOPLE)

    app = web.Application()
    for path, handler in (
        ("/page", by_page),
        ("/offset", by_offset),
        ("/cursor", by_cursor),
        ("/link", by_link),
        ("/auth", needs_auth),
        ("/flaky", flaky),
        ("/broken", broken),
        ("/html", not_json),
        ("/since", since),
    ):
        app.router.add_get(path, handler)
    return app


@pytest.fixture
async def server(aiohttp_server):
    calls: list = []
    srv = await aiohttp_server(make_app(calls))
    srv.calls = calls
    return srv


def spec_for(server, entity: dict, **source) -> dict:
    return {
        "syncMode": source.pop("syncMode", "full"),
        "entities": source.pop("entities", None),
        "cursors": source.pop("cursors", {}),
        "network": {"allowedNetworks": source.pop("allowedNetworks", LOOPBACK)},
        "source": {
            "type": "http",
            "baseUrl": str(server.make_url("/")),
            "headers": {},
            "maxRetries": 3,
            "entities": [entity],
            **source,
        },
    }


async def run(spec: dict) -> list:
    out = io.StringIO()
    await HttpSync(spec, out).run()
    return [parse_line(line) for line in out.getvalue().splitlines()]


def records(messages) -> list[dict]:
    return [m.data for m in messages if isinstance(m, Record)]


@pytest.mark.parametrize(
    "entity",
    [
        {
            "name": "p",
            "path": "/page",
            "recordsPath": "data.items",
            "pagination": {"type": "page", "pageSize": 3, "sizeParam": "limit"},
        },
        {
            "name": "p",
            "path": "/offset",
            "pagination": {"type": "offset", "pageSize": 2, "sizeParam": "limit"},
        },
        {
            "name": "p",
            "path": "/cursor",
            "recordsPath": "rows",
            "pagination": {"type": "cursor", "cursorParam": "cursor", "nextCursorPath": "meta.next"},
        },
        {"name": "p", "path": "/link", "pagination": {"type": "link"}},
    ],
    ids=["page", "offset", "cursor", "link"],
)
async def test_every_pagination_kind_reads_every_record_once(server, entity):
    messages = await run(spec_for(server, entity))
    assert records(messages) == PEOPLE
    assert isinstance(messages[-1], Result) and messages[-1].status == "succeeded"


async def test_auth_headers_are_sent(server):
    messages = await run(
        spec_for(server, {"name": "p", "path": "/auth"}, headers={"Authorization": "Bearer s3cret"})
    )
    assert len(records(messages)) == 2


async def test_429_with_retry_after_and_5xx_are_retried(server):
    messages = await run(spec_for(server, {"name": "p", "path": "/flaky"}))
    assert records(messages) == PEOPLE[:1]
    warnings = [m.message for m in messages if isinstance(m, Log) and m.level == "warning"]
    assert len(warnings) == 2 and "HTTP 429" in warnings[0] and "HTTP 503" in warnings[1]


async def test_persistent_500_fails_after_the_retries(server):
    with pytest.raises(SyncFailed, match="HTTP 500"):
        await run(spec_for(server, {"name": "p", "path": "/broken"}, maxRetries=1))


async def test_client_errors_and_bad_json_fail_clearly(server):
    with pytest.raises(SyncFailed, match="HTTP 401"):
        await run(spec_for(server, {"name": "p", "path": "/auth"}))
    with pytest.raises(SyncFailed, match="answered HTTP 200 with content type 'text/plain', not JSON"):
        await run(spec_for(server, {"name": "p", "path": "/html"}))
    with pytest.raises(SyncFailed, match="no list of records"):
        await run(spec_for(server, {"name": "p", "path": "/cursor", "recordsPath": "nope"}))


async def test_incremental_sends_the_cursor_filters_old_records_and_emits_the_new_cursor(server):
    entity = {"name": "p", "path": "/since", "cursorField": "updated", "cursorParam": "since"}
    messages = await run(spec_for(server, entity, syncMode="incremental", cursors={"p": "2030-01-04"}))
    assert [r["id"] for r in records(messages)] == [4, 5, 6]
    assert server.calls[-1] == {"since": "2030-01-04"}
    assert [m for m in messages if isinstance(m, State)] == [State("p", "2030-01-07")]


async def test_entity_filter_skips_other_entities(server):
    spec = spec_for(server, {"name": "p", "path": "/since"}, entities=["other"])
    messages = await run(spec)
    assert records(messages) == []


async def test_an_empty_selection_syncs_nothing_never_everything(server):
    messages = await run(spec_for(server, {"name": "p", "path": "/since"}, entities=[]))
    assert records(messages) == []
    assert server.calls == []


def test_retry_after_accepts_seconds_and_dates_and_is_capped():
    assert retry_after_seconds("3", 0) == 3
    assert retry_after_seconds("99999", 0) == 60
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", 0) == 0
    assert retry_after_seconds(None, 2) == 2


def test_the_command_exits_1_with_the_reason_on_stderr(capsys):
    from executor.sync_cli import run_sync_process

    spec = {
        "source": {
            "type": "http",
            "baseUrl": "http://127.0.0.1:9",
            "entities": [{"name": "x", "path": "/"}],
            "maxRetries": 0,
        }
    }
    code = run_sync_process(io.StringIO(json.dumps(spec) + "\n"), io.StringIO())
    assert code == 1
    assert "sync failed" in capsys.readouterr().err
