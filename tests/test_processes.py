"""The process wiring: what the worker does once at start, before any source runs."""

import os

import pytest
from structlog.testing import capture_logs

from syncjobs import processes


async def test_the_worker_makes_itself_non_dumpable_before_it_schedules(settings, monkeypatch):
    order = []
    monkeypatch.setattr(processes, "make_non_dumpable", lambda: order.append("non_dumpable") or True)

    async def scheduled(self, stop):
        order.append("scheduling")

    monkeypatch.setattr(processes.Scheduler, "run", scheduled)
    monkeypatch.setattr(processes, "stop_on_signals", lambda: None)
    assert await processes.run_worker(settings) == 0
    assert order == ["non_dumpable", "scheduling"]


async def test_a_worker_without_prctl_says_so(settings, monkeypatch):
    monkeypatch.setattr(processes, "make_non_dumpable", lambda: False)
    with capture_logs() as logs:
        await processes.harden_worker(settings.model_copy(update={"source_user": "root"}))
    assert [entry["event"] for entry in logs] == ["worker_dumpable"]


async def test_a_source_user_that_cannot_start_the_http_connector_is_said_at_start(settings, monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("sources change user only when the worker runs as root")
    monkeypatch.setattr(processes, "make_non_dumpable", lambda: True)
    with capture_logs() as logs:
        await processes.harden_worker(settings.model_copy(update={"source_user": "no-such-user-here"}))
    assert [entry["event"] for entry in logs] == ["source_user_cannot_run_http_connector"]
    assert "'no-such-user-here' does not exist" in logs[0]["problem"]


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_dev_widens_the_policy_by_its_own_address_only(settings, host):
    widened = processes.allow_demo_shop(
        settings.model_copy(update={"syncjobs_allowed_networks": "10.0.0.0/8"}), host
    )
    assert widened.syncjobs_allowed_networks.split(",") == [
        "10.0.0.0/8",
        f"{host}/{32 if '.' in host else 128}",
    ]
