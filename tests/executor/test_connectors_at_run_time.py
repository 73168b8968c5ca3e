"""What a source runs is decided at run time by the catalog, whatever its document says (C2 of issue 9)."""

from pathlib import Path

from models.execution import ExecutionStatus
from models.namespaces import workspace_database
from tests.executor.runs import request_for
from tests.interpreters import script_python

ECHO_ARGV_AND_SPEC = """
import json, sys
spec = json.loads(sys.stdin.readline())
source = spec["source"]
seen = {"id": 1, "argv": sys.argv[1:], "config": source["config"], "secrets": source["secrets"]}
print(json.dumps({"type": "record", "entity": "seen", "data": seen}))
print(json.dumps({"type": "result", "status": "succeeded"}))
"""


async def test_an_old_argv_document_refuses_to_run(runner, make_job, db, clock, readable_dir):
    marker = Path(readable_dir) / "ran"
    job = await make_job("placeholder")
    # A source stored before connectors existed, or edited by hand: an argv of the workspace's choosing.
    await db.data_sources.update_one(
        {},
        {"$set": {"argv": ["/bin/touch", str(marker)]}, "$unset": {"connector": ""}},
    )
    outcome = await runner.run(request_for(job, clock))
    assert outcome.status == ExecutionStatus.FAILED and outcome.pid is None
    assert "no longer run an argv" in outcome.error
    assert not marker.exists()


async def test_config_and_secrets_reach_the_connector_on_stdin_never_in_argv(
    runner, connector, make_job, db, clock, readable_dir
):
    path = Path(readable_dir) / "echo.py"
    path.write_text(ECHO_ARGV_AND_SPEC)
    name = await connector(script_python(), str(path), "--fixed", configSchema={"type": "object"})
    job = await make_job(name, sync_mode="incremental", source_secrets={"TOKEN": "tok-0123456789"})
    await db.data_sources.update_one({}, {"$set": {"config": {"region": "eu"}}})
    outcome = await runner.run(request_for(job, clock))
    assert outcome.status == ExecutionStatus.SUCCEEDED, outcome.error
    (seen,) = await db.client[workspace_database("ws-a", "warehouse")]["seen"].find().to_list(None)
    assert seen["argv"] == ["--fixed"]
    assert seen["config"] == {"region": "eu"} and seen["secrets"] == {"TOKEN": "tok-0123456789"}


async def test_a_hand_edited_config_outside_the_schema_refuses_to_run(runner, connector, make_job, db, clock):
    name = await connector(
        "/bin/true", configSchema={"type": "object", "properties": {"n": {"type": "integer"}}}
    )
    job = await make_job(name)
    await db.data_sources.update_one({}, {"$set": {"config": {"n": "--exec=/bin/sh"}}})
    outcome = await runner.run(request_for(job, clock))
    assert outcome.status == ExecutionStatus.FAILED and outcome.pid is None
    assert "does not suit the connector" in outcome.error


async def test_a_source_whose_connector_was_removed_fails_clearly(runner, connector, make_job, db, clock):
    name = await connector("/bin/true")
    job = await make_job(name)
    await db.connectors.delete_one({"_id": name})
    outcome = await runner.run(request_for(job, clock))
    assert outcome.status == ExecutionStatus.FAILED and f"{name!r} is not registered" in outcome.error
