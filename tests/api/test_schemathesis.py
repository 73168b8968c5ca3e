"""Schemathesis over every operation of the OpenAPI document, against the real app on loopback.

Valid references are seeded (a workspace with a data source, a destination, a job and a queued run) and
path parameters are pointed at them, so job routes are reached, not only answered 404. Every response
must be no 5xx and must match the document: status, content type, headers and body schema. The budget is
EXAMPLES per operation: about 13 s of CPU for both processes here."""

import os
import subprocess
import sys
import time

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.openapi import openapi_document
from api.routes import ROUTES
from tests.conftest import SECRET_KEY
from tests.factories import destination_body, http_source_body, sync_job_body
from tests.test_cli import clean_env, free_port

EXAMPLES = 20
WORKSPACE = "ws-fuzz"
BOOTSTRAP = "schemathesis-bootstrap-token"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

schema = schemathesis.openapi.from_dict(openapi_document(ROUTES))
# The coverage phase (every boundary value of every field, ~1,300 more cases) takes about a minute more
# here; the budget of this file is ~30 s of the suite, so `make test` runs the fuzzing phase, EXAMPLES
# cases per operation, and SYNCJOBS_FUZZ_COVERAGE=1 adds the coverage phase.
schema.config.phases.coverage.enabled = os.environ.get("SYNCJOBS_FUZZ_COVERAGE") == "1"


class LiveApi:
    """`syncjobs api` in its own process on a loopback port, on its in-memory database: the fuzzer's
    blocking calls and the server then run on separate cores, not one interpreter's lock."""

    def __init__(self, log):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.headers = {"Authorization": f"Bearer {BOOTSTRAP}"}
        self.ids: dict[str, str] = {"workspace": WORKSPACE}
        # Limits out of the way: the fuzzer sends thousands of requests with one token.
        env = clean_env(
            SYNCJOBS_BOOTSTRAP_TOKEN=BOOTSTRAP,
            SYNCJOBS_SECRET_KEY=SECRET_KEY,
            API_RATE_PER_SECOND="1000000",
            API_RATE_BURST="1000000",
            WORKSPACE_MAX_JOBS="100000",
            WORKSPACE_MAX_DATA_SOURCES="100000",
            WORKSPACE_MAX_DESTINATIONS="100000",
            WORKSPACE_MAX_TOKENS="100000",
        )
        command = [
            sys.executable,
            "-m",
            "syncjobs",
            "api",
            "--in-memory",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        self.process = subprocess.Popen(command, env=env, stdout=log, stderr=log)

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "syncjobs api ended at start-up"
            try:
                if requests.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("syncjobs api did not answer within 30 s")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)

    def post(self, path: str, body=None) -> dict:
        resp = requests.post(f"{self.base_url}{path}", json=body, headers=self.headers, timeout=10)
        assert resp.status_code in (201, 202), resp.text
        return resp.json()

    def seed(self) -> None:
        """A job the fuzzer may change but not delete, a queued run, and spares for its DELETEs."""
        ws = f"/api/workspaces/{WORKSPACE}"
        for role in ("", "spare"):
            source = self.post(f"{ws}/data-sources", http_source_body())["id"]
            destination = self.post(f"{ws}/destinations", destination_body())["id"]
            job = self.post(
                f"{ws}/sync-jobs", sync_job_body(dataSourceId=source, destinationDatabaseId=destination)
            )
            self.ids[f"{role}sourceId"], self.ids[f"{role}destinationId"] = source, destination
            self.ids[f"{role}jobId"] = job["id"]
        self.ids["executionId"] = self.post(f"{ws}/sync-jobs/{self.ids['jobId']}/run")["executionId"]
        self.ids["tokenId"] = self.post(f"{ws}/tokens", {"name": "spare"})["id"]
        self.ids["adminTokenId"] = self.post("/api/admin/tokens", {"name": "spare"})["id"]
        for role in ("", "spare"):
            hook = {"url": "https://hooks.example.com/services/fuzz", "events": ["job.failing"]}
            self.ids[f"{role}webhookId"] = self.post(f"{ws}/webhooks", hook)["id"]
        for role in ("", "spare"):
            connector = {"name": f"{role}fuzz", "executable": "/bin/true"}
            self.ids[f"{role}connector"] = self.post("/api/admin/connectors", connector)["name"]


@pytest.fixture(scope="module")
def live_api(tmp_path_factory):
    log_path = tmp_path_factory.mktemp("schemathesis") / "api.log"
    with open(log_path, "w") as log:
        api = LiveApi(log)
    try:
        api.wait_until_up()
        api.seed()
        # Read by the hook, which schemathesis calls while generating, before the test body runs.
        LIVE_IDS.update(api.ids)
        yield api
    finally:
        api.stop()
    documented = {f"{route.method} {route.path}" for route in ROUTES}
    unreached = {op: codes for op, codes in STATUSES.items() if op in documented and codes <= {401, 403, 404}}
    assert not unreached, f"only ever answered 401/403/404, so never reached its handler: {unreached}"
    # A 5xx fails its case above; the server's log then holds the traceback.
    assert "Traceback" not in log_path.read_text(), log_path.read_text()[-5000:]


def seeded_parameters(method: str, path: str, generated: dict, ids: dict) -> dict:
    """Point each path parameter at a seeded document; DELETEs at a spare, so the rest stay reachable.
    Before seeding (schemathesis draws its schema examples at collection) the generated values stay."""
    spare = "spare" if method == "DELETE" else ""
    kind = "sourceId" if "/data-sources/" in path else "destinationId"
    wanted = {
        "workspaceId": "workspace",
        "jobId": "sparejobId" if spare and path.endswith("{jobId}") else "jobId",
        "executionId": "executionId",
        "resourceId": f"{spare}{kind}",
        "tokenId": "adminTokenId" if path.startswith("/api/admin/") else "tokenId",
        "name": f"{spare}connector",
        "webhookId": f"{spare}webhookId",
    }
    return {name: ids.get(wanted.get(name, ""), value) for name, value in generated.items()}


@schema.hook
def map_path_parameters(context, path_parameters):
    operation = context.operation
    return seeded_parameters(operation.method.upper(), operation.path, path_parameters or {}, LIVE_IDS)


LIVE_IDS: dict[str, str] = {}
# Operation -> the statuses it answered, to show the seeded references were reached.
STATUSES: dict[str, set[int]] = {}


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_no_5xx_and_matches_the_document(case, live_api):
    response = case.call_and_validate(base_url=live_api.base_url, headers=live_api.headers, checks=CHECKS)
    STATUSES.setdefault(f"{case.method} {case.path}", set()).add(response.status_code)
