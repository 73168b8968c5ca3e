"""The compose stack's wiring, the image's build context and user, and the sample dashboard, as files."""

import json
import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

import api.health  # noqa: F401  (registers the API's metrics)
import worker.metrics  # noqa: F401  (registers the worker's metrics)

ROOT = Path(__file__).resolve().parent.parent


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def healthcheck_url(service: dict) -> str:
    [url] = re.findall(r"http://127\.0\.0\.1:\d+/\w+", " ".join(service["healthcheck"]["test"]))
    return url


def test_services_and_their_restart_policy():
    services = compose()["services"]
    assert set(services) == {"mongo", "api", "worker"}
    for name in ("api", "worker"):
        assert services[name]["restart"] == "unless-stopped"
        assert services[name]["depends_on"] == {"mongo": {"condition": "service_healthy"}}


def test_mongo_is_healthy_only_as_primary_keeps_its_data_and_is_not_published():
    doc = compose()
    mongo = doc["services"]["mongo"]
    check = mongo["healthcheck"]["test"]
    assert "rs.initiate" in check and "isWritablePrimary" in check and "quit(" in check
    # The member's host is the service name, so every container can reach the primary the set names.
    assert "host: 'mongo:27017'" in check
    assert "ports" not in mongo
    [volume] = mongo["volumes"]
    name, _, path = volume.partition(":")
    assert path == "/data/db" and name in doc["volumes"]
    assert "--replSet" in mongo["command"] and "rs0" in mongo["command"]


def test_api_and_workers_share_the_database_and_the_secret_key_and_check_their_readiness():
    services = compose()["services"]
    api, worker = services["api"], services["worker"]
    for name in ("MONGODB_URL", "SYNCJOBS_SECRET_KEY"):
        assert api["environment"][name] == worker["environment"][name]
    assert (
        api["environment"]["MONGODB_URL"].startswith("mongodb://mongo:27017/")
        and "replicaSet=rs0" in (api["environment"]["MONGODB_URL"])
    )
    # Required, with a message on how to make one, rather than silently empty.
    assert api["environment"]["SYNCJOBS_SECRET_KEY"].startswith("${SYNCJOBS_SECRET_KEY:?")
    assert api["environment"]["SYNCJOBS_BOOTSTRAP_TOKEN"].startswith("${SYNCJOBS_BOOTSTRAP_TOKEN:?")
    assert "token_urlsafe" in api["environment"]["SYNCJOBS_BOOTSTRAP_TOKEN"]
    api_port = api["command"][api["command"].index("--port") + 1]
    assert healthcheck_url(api) == f"http://127.0.0.1:{api_port}/readyz"
    assert f"{api_port}:{api_port}" in api["ports"]
    status_port = worker["command"][worker["command"].index("--status-port") + 1]
    assert healthcheck_url(worker) == f"http://127.0.0.1:{status_port}/readyz"
    assert worker["environment"]["WORKER_STATUS_HOST"] == "0.0.0.0"
    assert worker["deploy"]["replicas"] == 2 and "ports" not in worker


def test_the_build_context_leaves_the_venv_out_and_the_image_runs_as_its_own_user():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv/" in ignored and ".git/" in ignored
    users = re.findall(r"^USER (\S+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert users and users[-1] not in ("root", "0", "nobody")
    assert "/opt/connectors" in (ROOT / "Dockerfile").read_text()


def test_the_dashboard_queries_only_metrics_we_export():
    dashboard = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    queried = {name for expr in exprs for name in re.findall(r"\bsyncjobs_\w+", expr)}
    # Series names by family, also for labelled families that have no series yet.
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    exported = {
        family.name + suffix for family in REGISTRY.collect() for suffix in suffixes.get(family.type, ("",))
    }
    assert queried and queried <= exported, queried - exported
    # Every metric the issue lists has a panel.
    for name in (
        "syncjobs_executions_total",
        "syncjobs_execution_duration_seconds_bucket",
        "syncjobs_fire_lag_seconds_bucket",
        "syncjobs_worker_leader",
        "syncjobs_leader_term",
        "syncjobs_lease_renewal_failures_total",
        "syncjobs_executions_queued",
        "syncjobs_api_request_duration_seconds_bucket",
    ):
        assert name in queried, name
