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


async def test_a_job_stored_before_todays_input_checks_is_still_shown(client, ws, db):
    """Input checks may tighten after a job was written (a timeout too long, a name with a tab, an entity
    twice): reads show the stored job as it is rather than answering 500 for it and every page holding it."""
    job = await create_job(client, ws, name="kept")
    await db.syncjobs.update_one(
        {"name": "kept"},
        {
            "$set": {
                "name": "old\tname",
                "timeoutSeconds": 30 * 86_400,
                "entities": ["customers", "customers"],
                "retry.maxAttempts": 50,
            }
        },
    )
    for url in (ws.jobs, f"{ws.jobs}/{job['id']}", f"{ws.jobs}/{job['id']}/status"):
        resp = await client.get(url, headers=ws.headers)
        assert resp.status == 200, await resp.text()
    shown = await (await client.get(f"{ws.jobs}/{job['id']}", headers=ws.headers)).json()
    assert (shown["name"], shown["timeoutSeconds"], shown["entities"], shown["retry"]["maxAttempts"]) == (
        "old\tname",
        30 * 86_400,
        ["customers", "customers"],
        50,
    )
