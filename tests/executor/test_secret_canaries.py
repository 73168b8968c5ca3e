"""A source that echoes its secrets in every form it can think of (H3 of issue 9): the execution's log,
its error and the worker's own log show none of them."""

import base64
import io
import json

import pytest
from aiohttp import web
from structlog.testing import capture_logs

from executor.secret_mask import SecretMask
from executor.sync_cli import HttpSync, SyncFailed
from models.execution import ExecutionStatus
from tests.executor.runs import request_for

CANARIES = {
    "EIGHT": "Cn4ry-08",
    "TWELVE": "Cn4ry-12-abc",
    "LONG": "Cn4ry-24-abcdefghijklmnop",
    "SPECIAL": "p@ss word/with+signs&=?",
}
LEAKER = """
    import base64, urllib.parse
    for name, value in spec["source"]["secrets"].items():
        raw = value.encode()
        forms = {
            "raw": value,
            "url": urllib.parse.quote(value, safe=""),
            "url_plus": urllib.parse.quote_plus(value),
            "b64": base64.b64encode(raw).decode(),
            "b64url": base64.urlsafe_b64encode(raw).decode(),
            "basic": base64.b64encode(b"user:" + raw).decode(),
            "basic2": base64.b64encode(b"u:" + raw).decode(),
            "hex": raw.hex(),
            "prefix": value[:12],
            "suffix_cut": value[:-1],
            "no_first_letter": value[1:],
        }
        for kind, form in forms.items():
            emit(type="log", message=f"{name} {kind}={form}!")
            sys.stderr.write(f"stderr {name} {kind}:{form}\\n")
            print(f"stdout {kind} <{form}>", flush=True)
    sys.exit(1)
"""


def forms_of(secret: str) -> list[str]:
    from urllib.parse import quote, quote_plus

    raw = secret.encode()
    encoded = [
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        base64.b64encode(b"user:" + raw).decode()[8:-4],
        base64.b64encode(b"u:" + raw).decode()[4:-4],
    ]
    pieces = [secret[:8], secret[1:9]] if len(secret) > 8 else [secret]
    return [secret, quote(secret, safe=""), quote_plus(secret), *pieces, raw.hex(), *encoded]


async def test_a_source_echoing_its_secrets_leaks_none_of_them(runner, script, make_job, clock):
    job = await make_job(await script(LEAKER), source_secrets=CANARIES)
    with capture_logs() as logs:
        outcome = await runner.run(request_for(job, clock))
    assert outcome.status == ExecutionStatus.FAILED
    shown = json.dumps([outcome.error, outcome.log_tail, outcome.stats, logs], default=str)
    assert "EIGHT raw=***!" in shown and "LONG prefix=***!" in shown
    for secret in CANARIES.values():
        for form in forms_of(secret):
            assert form not in shown, (secret, form)


@pytest.mark.parametrize("secret", list(CANARIES.values()))
def test_the_mask_covers_every_form_and_any_eight_characters_of_one(secret):
    mask = SecretMask([secret])
    for form in forms_of(secret):
        assert form not in mask(f"before {form} after"), form
    assert mask("nothing secret here") == "nothing secret here"


def test_secrets_shorter_than_eight_characters_are_never_given_to_the_mask():
    # They are refused at input; were one stored by hand, masking 3 characters would garble every log.
    assert SecretMask(["abc"])("abc abc") == "abc abc"


async def test_the_http_connector_errors_name_no_query_secret(aiohttp_server):
    async def refuse(request):
        return web.Response(status=401, text=request.query.get("api_key", ""))

    app = web.Application()
    app.router.add_get("/x", refuse)
    server = await aiohttp_server(app)
    canary = CANARIES["LONG"]
    spec = {
        "network": {"allowedNetworks": ["127.0.0.0/8"]},
        "source": {
            "type": "http",
            "baseUrl": f"http://user:{canary}@127.0.0.1:{server.port}/?api_key={canary}",
            "maxRetries": 0,
            "entities": [{"name": "x", "path": "x", "params": {"token": canary}}],
        },
    }
    with pytest.raises(SyncFailed) as failure:
        await HttpSync(spec, io.StringIO()).run()
    assert "HTTP 401" in str(failure.value)
    for form in forms_of(canary):
        assert form not in str(failure.value)
