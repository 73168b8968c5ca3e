"""Stored documents become views without re-running the input validators: the data was valid when written."""

import models.cron
from tests.api.helpers import create_job


async def test_reading_jobs_never_parses_a_cron_expression(client, ws, monkeypatch):
    job = await create_job(client, ws, schedule={"cron": "17 3 * * 1-5", "timezone": "Europe/Paris"})
    parses = []

    def counting_croniter(*args, **kwargs):
        parses.append(args)
        raise AssertionError("a read parsed a cron expression")

    monkeypatch.setattr(models.cron, "croniter", counting_croniter)
    models.cron.cron_problem.cache_clear()
    for url in (ws.jobs, f"{ws.jobs}/{job['id']}"):
        resp = await client.get(url, headers=ws.headers)
        assert resp.status == 200, await resp.text()
    assert parses == []


async def test_a_cron_expression_is_checked_once_however_many_jobs_use_it(client, ws, monkeypatch):
    models.cron.cron_problem.cache_clear()
    for i in range(3):
        await create_job(client, ws, name=f"job {i}", schedule={"cron": "41 4 * * *", "timezone": "UTC"})
    assert models.cron.cron_problem.cache_info().misses == 1
