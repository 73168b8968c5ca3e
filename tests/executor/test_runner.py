"""The subprocess runner end to end: real child processes, each database backend as the destination."""

import asyncio
import resource
import time

import pytest
from aiohttp import web

from executor.runner import SubprocessRunner, source_lease_seconds
from models.execution import ExecutionStatus
from tests.executor.runs import request_for, warehouse, warehouse_db
from tests.interpreters import http_connector_user
from tests.wire.backend import RENAME_REFUSED


@pytest.mark.wire_differs(reason=RENAME_REFUSED)
async def test_a_command_source_syncs_its_records_in_full(runner, script, make_job, db, clock):
    argv = await script("""
        for i in range(120):
            emit(type="record", entity="items", data={"id": i, "n": i * 2})
        emit(type="log", message="done reading")
        emit(type="result", status="succeeded")
    """)
    outcome = await runner.run(request_for(await make_job(argv), clock))
    assert outcome.status == ExecutionStatus.SUCCEEDED, outcome.error
    assert outcome.exit_code == 0 and outcome.pid > 0
    stored = await warehouse(db, "items")
    assert len(stored) == 120 and stored[5]["n"] == 10 and stored[5]["_id"] == 5
    assert outcome.stats["entities"]["items"] == {"read": 120, "written": 120, "failed": 0}
    assert "[source] done reading" in outcome.log_tail


@pytest.mark.wire_differs(reason=RENAME_REFUSED)
async def test_full_mode_replaces_the_collection_and_a_failed_run_leaves_it_intact(
    runner, script, make_job, db, clock
):
    await warehouse_db(db)["items"].insert_many([{"_id": 100, "old": True}])
    ok = await script("""
        for i in range(3):
            emit(type="record", entity="items", data={"id": i})
        emit(type="result", status="succeeded")
    """)
    outcome = await runner.run(request_for(await make_job(ok), clock))
    assert outcome.status == ExecutionStatus.SUCCEEDED
    assert [doc["_id"] for doc in await warehouse(db, "items")] == [0, 1, 2]
    failing = await script("""
        for i in range(10, 90):
            emit(type="record", entity="items", data={"id": i})
        sys.stderr.write("connection reset by peer\\n")
        sys.exit(3)
    """)
    outcome = await runner.run(request_for(await make_job(failing), clock))
    assert outcome.status == ExecutionStatus.FAILED and outcome.exit_code == 3
    assert "connection reset by peer" in outcome.error
    assert [doc["_id"] for doc in await warehouse(db, "items")] == [0, 1, 2]
    assert not [name for name in await warehouse_db(db).list_collection_names() if "staging" in name]


async def test_incremental_upserts_and_reports_cursors_only_on_success(runner, script, make_job, db, clock):
    argv = await script("""
        since = spec["cursors"].get("items", 0)
        for i in range(since + 1, since + 4):
            emit(type="record", entity="items", data={"id": i, "v": "new"})
        emit(type="state", entity="items", cursor=since + 3)
        if spec["source"]["secrets"].get("FAIL") == "yes-fail-it":
            sys.exit(1)
        emit(type="result", status="succeeded")
    """)
    job = await make_job(argv, sync_mode="incremental")
    job["cursors"] = {"items": 10}
    outcome = await runner.run(request_for(job, clock))
    assert outcome.cursors == {"items": 13}
    assert [doc["_id"] for doc in await warehouse(db, "items")] == [11, 12, 13]
    failing = await make_job(argv, sync_mode="incremental", source_secrets={"FAIL": "yes-fail-it"})
    failing["cursors"] = {"items": 13}
    outcome = await runner.run(request_for(failing, clock))
    assert outcome.status == ExecutionStatus.FAILED and outcome.cursors == {}


@pytest.mark.wire_differs(reason=RENAME_REFUSED)
async def test_the_entity_filter_holds_even_if_the_source_ignores_it(runner, script, make_job, db, clock):
    argv = await script("""
        emit(type="record", entity="wanted", data={"id": 1})
        emit(type="record", entity="unwanted", data={"id": 1})
        emit(type="result", status="succeeded")
    """)
    outcome = await runner.run(request_for(await make_job(argv, entities=["wanted"]), clock))
    assert outcome.status == ExecutionStatus.SUCCEEDED
    assert len(await warehouse(db, "wanted")) == 1 and await warehouse(db, "unwanted") == []


async def test_a_filter_naming_no_declared_entity_fails_instead_of_syncing_everything(
    runner, make_job, clock
):
    source = {
        "name": "shop",
        "type": "http",
        "baseUrl": "http://127.0.0.1:9",
        "entities": [{"name": "customers", "path": "/c"}, {"name": "orders", "path": "/o"}],
    }
    outcome = await runner.run(request_for(await make_job(source=source, entities=["invoices"]), clock))
    assert outcome.status == ExecutionStatus.FAILED
    assert "invoices" in outcome.error


async def test_invalid_json_lines_and_stderr_become_log_lines(runner, script, make_job, clock):
    argv = await script("""
        print("not json at all", flush=True)
        print('{"type": "record", "entity": "x"}', flush=True)
        sys.stderr.write("a warning on stderr\\n")
        emit(type="record", entity="x", data={"no_id": 1})
        emit(type="result", status="succeeded")
    """)
    outcome = await runner.run(request_for(await make_job(argv), clock))
    assert outcome.status == ExecutionStatus.SUCCEEDED
    assert "[stdout] not json at all" in outcome.log_tail
    assert '[stdout] {"type": "record", "entity": "x"}' in outcome.log_tail
    assert "[stderr] a warning on stderr" in outcome.log_tail
    assert outcome.stats["entities"]["x"]["failed"] == 1


async def test_exit_zero_without_a_result_is_a_failure(runner, script, make_job, clock):
    outcome = await runner.run(request_for(await make_job(await script("pass")), clock))
    assert outcome.status == ExecutionStatus.FAILED and "without a result" in outcome.error


async def test_a_missing_executable_fails_clearly(runner, make_job, connector, clock):
    outcome = await runner.run(request_for(await make_job(await connector("/nonexistent/bin/source")), clock))
    assert outcome.status == ExecutionStatus.FAILED
    assert "/nonexistent/bin/source" in outcome.error and "No such file" in outcome.error


async def test_a_run_past_its_timeout_is_killed_and_marked_timed_out(runner, script, make_job, clock):
    argv = await script("""
        emit(type="record", entity="items", data={"id": 1})
        time.sleep(60)
    """)
    started = time.monotonic()
    outcome = await runner.run(request_for(await make_job(argv, timeout=1), clock))
    assert outcome.status == ExecutionStatus.TIMED_OUT and "timed out after 1 s" in outcome.error
    assert time.monotonic() - started < 10
    assert outcome.exit_code == -15


async def test_a_child_that_ignores_sigterm_is_killed(runner, script, make_job, clock):
    argv = await script("""
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        emit(type="log", message="ready")
        time.sleep(60)
    """)
    job = await make_job(argv, timeout=1)
    outcome = await runner.run(request_for(job, clock))
    assert outcome.status == ExecutionStatus.TIMED_OUT and outcome.exit_code == -9


async def test_cancel_stops_the_child_and_keeps_the_previous_data(runner, script, make_job, db, clock):
    await warehouse_db(db)["items"].insert_one({"_id": "kept"})
    argv = await script("""
        emit(type="record", entity="items", data={"id": 1})
        time.sleep(60)
    """)
    request = request_for(await make_job(argv), clock)
    task = asyncio.create_task(runner.run(request))
    await asyncio.sleep(0.5)
    request.cancel.set()
    outcome = await asyncio.wait_for(task, 10)
    assert outcome.status == ExecutionStatus.CANCELED
    assert [doc["_id"] for doc in await warehouse(db, "items")] == ["kept"]


@pytest.mark.wire_differs(reason=RENAME_REFUSED)
async def test_progress_is_reported_while_the_run_goes(script, make_job, clock, db, secrets, fast_settings):
    runner = SubprocessRunner(db, secrets=secrets, settings=fast_settings, progress_seconds=0.05)
    argv = await script("""
        emit(type="record", entity="items", data={"id": 1})
        emit(type="log", message="first")
        time.sleep(0.5)
        emit(type="result", status="succeeded")
    """)
    reports = []

    async def progress(stats, lines):
        reports.append((stats["entities"].get("items", {}).get("read"), lines))

    outcome = await runner.run(request_for(await make_job(argv), clock, progress=progress))
    assert outcome.status == ExecutionStatus.SUCCEEDED
    assert any(read == 1 for read, _ in reports)
    assert ["[source] first"] in [lines for _, lines in reports]


async def test_huge_output_does_not_exhaust_memory(runner, script, make_job, clock):
    argv = await script("""
        line = "x" * 1023 + "\\n"
        chunk = line * 1024
        for _ in range(150):  # 150 MiB of log lines
            sys.stdout.write(chunk)
        sys.stdout.write("y" * (9 * 1024 * 1024) + "\\n")  # one line over the 8 MiB limit
        emit(type="result", status="succeeded")
    """)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    outcome = await runner.run(request_for(await make_job(argv, timeout=120), clock))
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert outcome.status == ExecutionStatus.SUCCEEDED, outcome.error
    assert len(outcome.log_tail) <= 1000
    assert outcome.stats["logLinesDropped"] > 100_000
    assert grown_mib < 60, f"the worker grew by {grown_mib:.0f} MiB"


async def test_secrets_reach_the_child_on_stdin_but_not_the_log(runner, script, make_job, clock):
    argv = await script("""
        sys.stderr.write("token is " + spec["source"]["secrets"]["API_TOKEN"] + "\\n")
        emit(type="result", status="succeeded")
    """)
    outcome = await runner.run(
        request_for(await make_job(argv, source_secrets={"API_TOKEN": "tok-very-secret"}), clock)
    )
    assert outcome.status == ExecutionStatus.SUCCEEDED
    assert "[stderr] token is ***" in outcome.log_tail
    assert "tok-very-secret" not in str(outcome)


async def test_the_builtin_http_connector_runs_as_a_subprocess(
    make_job, db, clock, secrets, fast_settings, aiohttp_server
):
    settings = fast_settings.model_copy(update={"source_user": http_connector_user()})
    runner = SubprocessRunner(db, secrets=secrets, settings=settings)

    async def customers(request):
        assert request.headers["Authorization"] == "Bearer k"
        page = int(request.query.get("page", 1))
        return web.json_response(
            {"data": [{"id": i, "at": i} for i in range((page - 1) * 2, min(page * 2, 5))]}
        )

    app = web.Application()
    app.router.add_get("/v1/customers", customers)
    server = await aiohttp_server(app)
    source = {
        "name": "api",
        "type": "http",
        "baseUrl": str(server.make_url("/v1")),
        "headers": {"Authorization": "Bearer k"},
        "entities": [
            {
                "name": "customers",
                "path": "customers",
                "recordsPath": "data",
                "cursorField": "at",
                "pagination": {"type": "page", "pageSize": 2, "sizeParam": None},
            }
        ],
    }
    job = await make_job(source=source, sync_mode="incremental")
    outcome = await runner.run(request_for(job, clock))
    assert outcome.status == ExecutionStatus.SUCCEEDED, (outcome.error, outcome.log_tail)
    assert [doc["_id"] for doc in await warehouse(db, "customers")] == [0, 1, 2, 3, 4]
    assert outcome.cursors == {"customers": 4}
    assert "Bearer k" not in str(outcome.log_tail)


async def test_a_run_its_worker_may_no_longer_start_never_starts_its_source(
    runner, script, make_job, clock, tmp_path
):
    marker = tmp_path / "ran"
    argv = await script(f"""
        open({str(marker)!r}, "w").close()
        emit(type="result", status="succeeded")
    """)
    request = request_for(await make_job(argv), clock)
    request.may_start = lambda: "its job lock lapsed before the source started"
    outcome = await runner.run(request)
    assert outcome.status == ExecutionStatus.ABANDONED and "lock lapsed" in outcome.error
    assert outcome.pid is None and not marker.exists()


async def test_a_run_whose_lock_would_lapse_before_its_source_could_be_stopped_never_starts_it(
    runner, script, make_job, clock, tmp_path, fast_settings
):
    marker = tmp_path / "ran"
    argv = await script(f"""
        open({str(marker)!r}, "w").close()
        emit(type="result", status="succeeded")
    """)
    request = request_for(await make_job(argv), clock)
    request.may_start = lambda: None
    request.lock_age = lambda: source_lease_seconds(fast_settings)  # its whole lease has gone by
    outcome = await runner.run(request)
    assert outcome.status == ExecutionStatus.ABANDONED and "would lapse" in outcome.error
    assert outcome.pid is None and not marker.exists()
