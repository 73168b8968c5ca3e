"""Fair share between workspaces: when more runs wait than a worker has slots, workspaces take turns."""

import asyncio
from datetime import datetime, timedelta

from models.execution import Trigger, new_execution_document
from models.execution_store import ExecutionStore
from tests.fakes import eventually
from worker.fair_slots import FairSlots


async def queue_runs(db, clock, add_job, workspace: str, count: int) -> list[dict]:
    """`count` queued manual runs of as many jobs of `workspace`, queued one millisecond apart."""
    runs = []
    for n in range(count):
        job = await add_job(
            name=f"{workspace}-{n}", workspaceId=workspace, schedule={"cron": "0 0 1 1 *", "timezone": "UTC"}
        )
        clock.set(clock.now() + timedelta(milliseconds=1))
        runs.append(
            new_execution_document(
                job=job, trigger=Trigger.MANUAL, scheduled_for=clock.now(), now=clock.now()
            )
        )
    await ExecutionStore(db, retention_days=30).queue(runs)
    return runs


async def test_one_queued_run_of_a_workspace_is_not_starved_by_a_hundred_of_another(
    workers, db, clock, runner, add_job
):
    workers.settings = workers.settings.model_copy(update={"max_concurrent_runs": 2})
    runner.hold = True
    crowd = await queue_runs(db, clock, add_job, "ws-crowd", 100)
    (lone,) = await queue_runs(db, clock, add_job, "ws-lone", 1)  # queued last, after all of the crowd's
    await workers.start()
    await clock.advance(2)
    await eventually(lambda: runner.active == 2)
    # The two slots go one to each workspace: a first-come queue would run the lone one 101st.
    assert sorted(r.execution["workspaceId"] for r in runner.requests) == ["ws-crowd", "ws-lone"]
    runner.hold = False
    runner.release.set()
    await eventually(lambda: len(runner.requests) == 101, timeout=30)
    order = [r.execution["_id"] for r in runner.requests]
    # The crowd's runs go by their scheduled time.
    crowd_order = [execution_id for execution_id in order if execution_id != lone["_id"]]
    assert crowd_order[2:] == [run["_id"] for run in crowd if run["_id"] in crowd_order[2:]]
    assert runner.peak == 2


async def grants(slots: FairSlots, waiters: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """The order in which `waiters` (workspace, minute) get a slot, each holding it until the next grant."""
    order: list[tuple[str, int]] = []
    base = datetime(2030, 1, 1)

    async def wait(workspace: str, minute: int) -> None:
        async with slots.slot(workspace, base + timedelta(minutes=minute)):
            order.append((workspace, minute))
            await asyncio.sleep(0)

    await asyncio.gather(*(wait(workspace, minute) for workspace, minute in waiters))
    return order


async def test_slots_go_round_robin_by_workspace_then_by_scheduled_time():
    order = await grants(FairSlots(1), [("a", 3), ("a", 1), ("a", 2), ("b", 9), ("c", 5), ("b", 8)])
    # The first waiter takes the free slot at once; then the workspaces in the order they began waiting, one
    # run each per turn, each workspace's earliest slot first.
    assert order == [("a", 3), ("a", 1), ("b", 8), ("c", 5), ("a", 2), ("b", 9)]


async def test_a_waiter_canceled_in_line_does_not_take_a_slot_with_it():
    slots = FairSlots(1)
    held = asyncio.Event()
    done = asyncio.Event()

    async def hold():
        async with slots.slot("a", datetime(2030, 1, 1)):
            held.set()
            await done.wait()

    holder = asyncio.create_task(hold())
    await held.wait()
    canceled = asyncio.create_task(grants(slots, [("b", 1)]))
    await asyncio.sleep(0)
    canceled.cancel()
    done.set()
    await holder
    assert await asyncio.wait_for(grants(slots, [("c", 1)]), 1) == [("c", 1)]


async def test_a_tenant_with_many_runs_cannot_fill_the_worker_past_its_cap(
    workers, db, clock, runner, add_job
):
    """MAX_RUNS_PER_WORKSPACE: a workspace with ten runs queued holds at most two of the four slots, even
    while the others are free; another tenant's run takes a free slot at once."""
    workers.settings = workers.settings.model_copy(
        update={"max_concurrent_runs": 4, "max_runs_per_workspace": 2}
    )
    runner.hold = True
    await queue_runs(db, clock, add_job, "ws-greedy", 10)
    await workers.start()
    await clock.advance(2)
    await eventually(lambda: runner.active == 2)
    await clock.advance(2)  # another dispatch round: still no third run of the greedy workspace
    assert runner.active == 2 and runner.peak == 2
    await queue_runs(db, clock, add_job, "ws-other", 1)
    await clock.advance(2)
    await eventually(lambda: runner.active == 3)
    running = [r.execution["workspaceId"] for r in runner.requests]
    assert running.count("ws-greedy") == 2 and running.count("ws-other") == 1
    runner.hold = False
    runner.release.set()
    await eventually(lambda: runner.active == 0 and len(runner.requests) == 11, timeout=10)


async def test_capped_slots_pass_a_workspace_at_its_cap_over_without_losing_its_turn():
    slots = FairSlots(3, per_workspace=1)
    start = datetime(2030, 1, 1)
    order: list[str] = []
    release = asyncio.Event()

    async def run(workspace: str, minute: int):
        async with slots.slot(workspace, start + timedelta(minutes=minute)):
            order.append(workspace)
            await release.wait()

    tasks = [asyncio.create_task(run(w, m)) for w, m in (("a", 0), ("a", 1), ("b", 2), ("a", 3))]
    await eventually(lambda: len(order) == 2)
    await asyncio.sleep(0)
    assert sorted(order) == ["a", "b"]  # a third slot is free, but "a" is at its cap
    release.set()
    await asyncio.gather(*tasks)
    assert order.count("a") == 3
