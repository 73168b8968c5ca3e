import asyncio

from pymongo.errors import AutoReconnect

from tests.fakes import eventually
from tests.worker.conftest import lose_and_regain


async def test_exactly_one_of_three_workers_leads(workers, db):
    replicas = [await workers.start(f"w{i}") for i in range(3)]
    await workers.clock.advance(25)
    assert len(workers.leaders()) == 1
    lock = await db.worker_locks.find_one({"_id": "sync-worker"})
    assert lock["owner"] == workers.leaders()[0].worker_id
    assert lock["owner"].startswith("host:1:") and lock["term"] == 1
    assert lock["expiresAt"] > workers.clock.now()
    assert sum(1 for r in replicas if r.acting()) == 1


async def test_leader_renews_its_lease_and_keeps_the_lock(workers, db):
    leader = await workers.start("w1")
    await workers.start("w2")
    await workers.clock.advance(300)
    assert workers.leaders() == [leader]
    lock = await db.worker_locks.find_one({"_id": "sync-worker"})
    assert lock["term"] == 1 and lock["heartbeatAt"] >= workers.clock.now() - __import__(
        "datetime"
    ).timedelta(seconds=10)


async def test_standby_takes_over_after_the_lease_lapses(workers, db):
    leader = await workers.start("w1")
    standby = await workers.start("w2")
    assert workers.leaders() == [leader]
    await workers.crash(leader)
    await workers.clock.advance(20)
    assert not standby.leading.is_set(), "the dead leader's lease has not lapsed yet"
    await workers.clock.advance(25)
    assert workers.leaders() == [standby]
    lock = await db.worker_locks.find_one({"_id": "sync-worker"})
    assert lock["owner"] == standby.worker_id and lock["term"] == 2


async def test_graceful_shutdown_hands_over_within_one_renewal_interval(workers, db):
    leader = await workers.start("w1")
    standby = await workers.start("w2")
    await workers.stop(leader)
    lock = await db.worker_locks.find_one({"_id": "sync-worker"})
    assert lock["expiresAt"] <= workers.clock.now()
    await workers.clock.advance(10)
    assert workers.leaders() == [standby]


async def test_leader_steps_down_when_renewals_fail_before_its_lease_runs_out(workers, db, add_job):
    leader = await workers.start("w1")
    await add_job()

    async def unreachable(lease):
        raise AutoReconnect("primary unreachable")

    leader.leader_lock.renew = unreachable
    lock = await db.worker_locks.find_one({"_id": "sync-worker"})
    # The local deadline is the lease less the clock-skew margin (2 s): it stops acting before the
    # document expires, so no other worker can lead while it still acts.
    await workers.clock.advance(27)
    assert leader.acting()
    await workers.clock.advance(1)
    assert not leader.acting()
    assert workers.clock.now() < lock["expiresAt"]
    await eventually(lambda: not leader.leading.is_set(), message="the leader to step down")
    fired_before = await db.job_executions.count_documents({})
    await workers.clock.advance(1)
    assert await db.job_executions.count_documents({}) == fired_before


async def test_a_deposed_leader_takes_the_lock_again_under_a_new_term(workers, db):
    leader = await workers.start("w1")
    await lose_and_regain(workers, leader)
    assert (await db.worker_locks.find_one({"_id": "sync-worker"}))["term"] == 2


async def test_regaining_leadership_starts_exactly_one_set_of_loops(workers, db):
    leader = await workers.start("w1")
    for _ in range(3):
        await lose_and_regain(workers, leader)
    assert (await db.worker_locks.find_one({"_id": "sync-worker"}))["term"] == 4
    names = [task.get_name() for task in asyncio.all_tasks()]
    assert names.count("fire") == 1 and names.count("dispatch") == 1 and names.count("feed") == 1


async def test_an_error_that_ends_leadership_releases_the_lock_at_once(workers, db, monkeypatch):
    leader = await workers.start("w1")

    async def broken_resync(term):
        raise RuntimeError("bug in the resync")

    monkeypatch.setattr(leader.firing, "resync", broken_resync)
    await workers.clock.advance(61)  # the first resync comes at 60 s
    assert not leader.leading.is_set()
    lock = await db.worker_locks.find_one({"_id": "sync-worker"})
    assert lock["term"] == 1 and lock["expiresAt"] <= workers.clock.now() and lock["releasedAt"] is not None
    await workers.clock.advance(10)
    assert leader.leading.is_set()
    assert (await db.worker_locks.find_one({"_id": "sync-worker"}))["term"] == 2
