"""Attacks on where a sync writes, stopped where the write happens (C1 and H1 of issue 9)."""

import pytest

from models.collections import API_TOKENS, SYNC_JOBS
from models.execution import ExecutionStatus
from models.namespaces import workspace_database
from tests.executor.runs import request_for
from tests.wire.backend import RENAME_REFUSED

PLANT_ADMIN_TOKEN = """
    emit(type="record", entity="api_tokens", data={"id": "planted", "admin": True, "tokenHash": "x"})
    emit(type="record", entity="syncjobs", data={"id": "planted"})
    emit(type="result", status="succeeded")
"""


async def test_a_workspace_naming_the_service_database_writes_only_to_its_own(
    runner, script, make_job, db, clock
):
    jobs_before = await db[SYNC_JOBS].count_documents({})
    job = await make_job(
        await script(PLANT_ADMIN_TOKEN), destination={"database": db.name}, sync_mode="incremental"
    )
    outcome = await runner.run(request_for(job, clock))
    assert outcome.status == ExecutionStatus.SUCCEEDED, outcome.error
    assert await db[API_TOKENS].count_documents({"_id": "planted"}) == 0
    assert await db[SYNC_JOBS].count_documents({}) == jobs_before
    own = db.client[workspace_database("ws-a", db.name)]
    assert own.name != db.name
    assert await own["api_tokens"].count_documents({"_id": "planted"}) == 1


@pytest.mark.wire_differs(reason=RENAME_REFUSED)
async def test_full_mode_cannot_replace_the_service_jobs_collection(runner, script, make_job, db, clock):
    await db[SYNC_JOBS].insert_one({"_id": "a-real-job"})
    job = await make_job(await script(PLANT_ADMIN_TOKEN), destination={"database": db.name}, sync_mode="full")
    outcome = await runner.run(request_for(job, clock))
    assert outcome.status == ExecutionStatus.SUCCEEDED, outcome.error
    assert await db[SYNC_JOBS].find_one({"_id": "a-real-job"}) is not None
    assert await db[SYNC_JOBS].find_one({"_id": "planted"}) is None


@pytest.mark.wire_differs(reason=RENAME_REFUSED)
async def test_workspace_a_cannot_overwrite_workspace_b_with_the_same_database_name(
    runner, script, make_job, db, clock
):
    b_database = db.client[workspace_database("ws-b", "warehouse")]
    await b_database["items"].insert_many([{"_id": i, "owner": "b"} for i in range(100)])
    attack = await script("""
        for i in range(2):
            emit(type="record", entity="items", data={"id": i, "owner": "a"})
        emit(type="result", status="succeeded")
    """)
    outcome = await runner.run(request_for(await make_job(attack, workspace="ws-a", sync_mode="full"), clock))
    assert outcome.status == ExecutionStatus.SUCCEEDED, outcome.error
    assert await b_database["items"].count_documents({"owner": "b"}) == 100
    assert await db.client[workspace_database("ws-a", "warehouse")]["items"].count_documents({}) == 2


async def test_a_hand_edited_database_name_is_refused_at_run_time(runner, script, make_job, db, clock):
    source = await script('emit(type="record", entity="x", data={"id": 1}); emit(type="result")')
    for planted in ("x.system", "a$b", "nul\x00", "a/b"):
        job = await make_job(source, destination={"database": planted})
        outcome = await runner.run(request_for(job, clock))
        assert outcome.status == ExecutionStatus.FAILED and outcome.pid is None, planted
        assert "database" in outcome.error
    for external in ("admin", "config", "local"):
        job = await make_job(source, destination={"database": external, "url": "mongodb://db.example.com"})
        outcome = await runner.run(request_for(job, clock))
        assert outcome.status == ExecutionStatus.FAILED and "reserved" in outcome.error


async def test_records_for_system_or_dollar_collections_are_refused_one_by_one(
    runner, script, make_job, db, clock
):
    attack = await script("""
        for entity in ("system.users", "system.js", "$cmd", "a\\u0000b", "ok"):
            emit(type="record", entity=entity, data={"id": 1})
        emit(type="result", status="succeeded")
    """)
    outcome = await runner.run(request_for(await make_job(attack, sync_mode="incremental"), clock))
    assert outcome.status == ExecutionStatus.SUCCEEDED, outcome.error
    own = db.client[workspace_database("ws-a", "warehouse")]
    assert await own.list_collection_names() == ["ok"]
    failed = {name: stats["failed"] for name, stats in outcome.stats["entities"].items()}
    assert failed == {"system.users": 1, "system.js": 1, "$cmd": 1, "a\x00b": 1, "ok": 0}


async def test_a_hand_edited_system_prefix_writes_nothing(runner, script, make_job, db, clock):
    source = await script('emit(type="record", entity="users", data={"id": 1}); emit(type="result")')
    job = await make_job(source, destination={"collectionPrefix": "system."}, sync_mode="incremental")
    outcome = await runner.run(request_for(job, clock))
    assert outcome.stats["entities"]["users"]["failed"] == 1
    assert await db.client[workspace_database("ws-a", "warehouse")].list_collection_names() == []
