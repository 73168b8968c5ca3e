"""SSRF through the HTTP connector and destination URLs (H2 of issue 9), on loopback test servers that the
policy refuses unless a test allows them."""

import io
import socket

import pytest
from aiohttp import web
from aiohttp.resolver import DefaultResolver

from executor.destination import DestinationRefused, destination_database
from executor.sync_cli import HttpSync, SyncFailed
from models.execution import ExecutionStatus
from models.network_policy import NetworkPolicy
from syncjobs.demo import allow_demo_shop
from tests.executor.runs import request_for
from tests.interpreters import http_connector_user

LOOPBACK = ["127.0.0.0/8", "::1/128"]
ONLY_127_0_0_1 = ["127.0.0.1/32"]


@pytest.fixture
async def server(aiohttp_server):
    hits: list[str] = []

    async def records(request):
        hits.append(request.path)
        return web.json_response([{"id": 1}])

    async def internal_page(request):
        hits.append(request.path)
        return web.Response(text="<html>INTERNAL-ADMIN-PAGE root:x:0:0</html>", content_type="text/html")

    async def redirect(request):
        hits.append(request.path)
        raise web.HTTPFound(request.query["to"])

    async def next_elsewhere(request):
        hits.append(request.path)
        return web.json_response([{"id": 1}], headers={"Link": f'<{request.query["to"]}>; rel="next"'})

    app = web.Application()
    app.router.add_get("/records", records)
    app.router.add_get("/internal", internal_page)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/next", next_elsewhere)
    srv = await aiohttp_server(app, host="127.0.0.1")
    srv.hits = hits
    return srv


def spec(base_url: str, path: str, *, allowed=None, pagination=None) -> dict:
    entity = {"name": "r", "path": path, **({"pagination": pagination} if pagination else {})}
    return {
        "syncMode": "full",
        "network": {"allowedNetworks": allowed or []},
        "source": {"type": "http", "baseUrl": base_url, "maxRetries": 0, "entities": [entity]},
    }


async def sync(spec_: dict) -> str:
    out = io.StringIO()
    await HttpSync(spec_, out).run()
    return out.getvalue()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
async def test_the_service_loopback_is_refused_without_an_allowance(server, host):
    with pytest.raises(SyncFailed, match="not reachable under the network policy"):
        await sync(spec(f"http://{host}:{server.port}/", "records"))
    assert server.hits == []
    assert "1" in await sync(spec(f"http://127.0.0.1:{server.port}/", "records", allowed=LOOPBACK))
    assert server.hits == ["/records"]


async def test_a_redirect_to_a_refused_address_is_refused(server):
    target = f"http://127.0.0.2:{server.port}/records"
    base = f"http://127.0.0.1:{server.port}/"
    with pytest.raises(SyncFailed, match="is not under the source's baseUrl"):
        await sync(spec(base, f"redirect?to={target}", allowed=ONLY_127_0_0_1))
    assert server.hits == ["/redirect"]


async def test_a_redirect_to_another_origin_never_carries_the_sources_headers_there(server, aiohttp_server):
    """aiohttp itself drops only Authorization on a cross-origin redirect; an API key header would follow."""
    seen: list[dict] = []

    async def collector(request):
        seen.append(dict(request.headers))
        return web.json_response([{"id": 2}])

    app = web.Application()
    app.router.add_get("/steal", collector)
    elsewhere = await aiohttp_server(app, host="127.0.0.1")
    base = f"http://127.0.0.1:{server.port}/"
    attack = spec(base, f"redirect?to=http://127.0.0.1:{elsewhere.port}/steal", allowed=LOOPBACK)
    attack["source"]["headers"] = {"X-Api-Key": "canary-key-123456"}
    with pytest.raises(SyncFailed, match="is not under the source's baseUrl"):
        await sync(attack)
    assert seen == [] and server.hits == ["/redirect"]
    # On its own origin a redirect is followed.
    same = spec(base, f"redirect?to=http://127.0.0.1:{server.port}/records", allowed=LOOPBACK)
    assert '"id":1' in await sync(same)


async def test_names_are_checked_after_dns_and_connected_to_at_the_checked_address(server, monkeypatch):
    """No real DNS here: the resolver underneath answers for made-up names. A name answering an allowed
    address is connected to at that very address; one answering an internal address, even among public
    ones, even on a later lookup (DNS rebinding) or on a redirect hop, is refused before any connection."""
    lookups = {"rebind.test": 0}

    def answer(host: str) -> list[str]:
        if host == "rebind.test":
            lookups[host] += 1
            return ["127.0.0.1"] if lookups[host] == 1 else ["10.0.0.1"]
        return {
            "shop.test": ["127.0.0.1"],
            "mixed.test": ["8.8.8.8", "10.0.0.1"],
            "inside.test": ["10.0.0.1"],
        }[host]

    async def fake_resolve(self, host, port=0, family=socket.AF_INET):
        return [
            {"hostname": host, "host": ip, "port": port, "family": socket.AF_INET, "proto": 0, "flags": 0}
            for ip in answer(host)
        ]

    monkeypatch.setattr(DefaultResolver, "resolve", fake_resolve)
    out = await sync(spec(f"http://shop.test:{server.port}/", "records", allowed=ONLY_127_0_0_1))
    assert '"id":1' in out and server.hits == ["/records"]
    for host in ("mixed.test", "inside.test"):
        with pytest.raises(SyncFailed, match=f"{host} is not reachable"):
            await sync(spec(f"http://{host}:{server.port}/", "records", allowed=ONLY_127_0_0_1))
    await sync(spec(f"http://rebind.test:{server.port}/", "records", allowed=ONLY_127_0_0_1))
    with pytest.raises(SyncFailed, match="rebind.test is not reachable"):
        await sync(spec(f"http://rebind.test:{server.port}/", "records", allowed=ONLY_127_0_0_1))
    assert server.hits == ["/records", "/records"]
    target = f"http://inside.test:{server.port}/records"
    with pytest.raises(SyncFailed, match="is not under the source's baseUrl"):
        await sync(spec(f"http://shop.test:{server.port}/", f"redirect?to={target}", allowed=ONLY_127_0_0_1))
    assert server.hits == ["/records", "/records", "/redirect"]


@pytest.mark.parametrize(
    "path",
    ["http://127.0.0.2:{port}/records", "https://metadata.example/latest", "HTTP://127.0.0.1:1/x"],
)
async def test_a_hand_edited_absolute_entity_path_is_refused(server, path):
    base = f"http://127.0.0.1:{server.port}/v1/"
    with pytest.raises(SyncFailed, match="is not under the source's baseUrl"):
        await sync(spec(base, path.format(port=server.port), allowed=LOOPBACK))
    assert server.hits == []


async def test_a_next_link_to_another_origin_is_not_followed(server):
    base = f"http://127.0.0.1:{server.port}/"
    elsewhere = f"http://127.0.0.2:{server.port}/records"
    with pytest.raises(SyncFailed, match="is not under the source's baseUrl"):
        await sync(spec(base, f"next?to={elsewhere}", allowed=LOOPBACK, pagination={"type": "link"}))
    assert server.hits == ["/next"]


async def test_a_page_that_is_not_json_is_described_never_quoted(server):
    with pytest.raises(SyncFailed) as failure:
        await sync(spec(f"http://127.0.0.1:{server.port}/", "internal", allowed=LOOPBACK))
    assert "HTTP 200" in str(failure.value) and "text/html" in str(failure.value)
    assert "INTERNAL" not in str(failure.value) and "root:x" not in str(failure.value)


async def test_a_closed_port_and_a_silent_one_fail_alike():
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    silent_port = silent.getsockname()[1]
    try:
        messages = []
        for port in (closed_port, silent_port):
            source = spec(f"http://127.0.0.1:{port}/", "records", allowed=LOOPBACK)
            source["source"]["requestTimeoutSeconds"] = 0.3
            with pytest.raises(SyncFailed) as failure:
                await sync(source)
            messages.append(str(failure.value).replace(str(port), "PORT"))
    finally:
        silent.close()
    assert messages[0] == messages[1] == "http://127.0.0.1:PORT/records: could not get an answer"


async def test_a_run_of_an_http_source_on_loopback_is_refused_unless_allowed(
    server, make_job, db, clock, secrets, fast_settings
):
    from executor.runner import SubprocessRunner

    source = {
        "name": "self",
        "type": "http",
        "baseUrl": f"http://127.0.0.1:{server.port}",
        "maxRetries": 0,
        "entities": [{"name": "records", "path": "/records"}],
    }
    job = await make_job(source=source, sync_mode="incremental")
    refused = fast_settings.model_copy(
        update={"syncjobs_allowed_networks": "", "source_user": http_connector_user()}
    )
    outcome = await SubprocessRunner(db, secrets=secrets, settings=refused).run(request_for(job, clock))
    assert (
        outcome.status == ExecutionStatus.FAILED and "not reachable under the network policy" in outcome.error
    )
    assert server.hits == []
    allowed = refused.model_copy(update={"syncjobs_allowed_networks": "127.0.0.1/32"})
    outcome = await SubprocessRunner(db, secrets=secrets, settings=allowed).run(request_for(job, clock))
    assert outcome.status == ExecutionStatus.SUCCEEDED, outcome.error


@pytest.mark.parametrize(
    "url",
    [
        "mongodb://127.0.0.1:27017",
        "mongodb://localhost",
        "mongodb://[::1]:27018,db.example.com/?replicaSet=rs",
    ],
)
async def test_a_destination_url_inside_our_network_is_refused_before_connecting(db, url):
    destination = {"type": "mongodb", "database": "w", "url": url}
    with pytest.raises(
        DestinationRefused, match="not reachable under the network policy|could not be resolved"
    ):
        async with destination_database(db, "ws-a", destination, policy=NetworkPolicy()):
            pytest.fail("opened a client to a refused host")


def test_the_demo_allows_only_its_own_listening_address(settings):
    widened = allow_demo_shop(settings, "127.0.0.1")
    policy = NetworkPolicy.from_setting(widened.syncjobs_allowed_networks)
    assert policy.permits("127.0.0.1") and not policy.permits("127.0.0.2") and not policy.permits("10.0.0.1")
