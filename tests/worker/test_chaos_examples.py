"""Examples the chaos exploration found (tests/worker/test_chaos.py), replayed step by step without
hypothesis: each takes seconds, where finding it again through its seed takes minutes. The steps are those
the finding printed; the methods are the state machine's own rules."""

from collections.abc import Callable

import pytest

from tests.worker.test_chaos import ChaosMachine, chaos_conditions

# A crashed worker's coroutines wait for ever (chaos_world.Faults.gate); closing the example's loop leaves
# them to the collector, which complains. That is the crash the example asked for, not a finding.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def findings_of(steps: Callable[[ChaosMachine], None]) -> dict[str, list[str]]:
    with chaos_conditions():
        machine = ChaosMachine()
        try:
            steps(machine)
            machine.finish()
        finally:
            machine._close_loop()
    return machine.ledger.violations


def test_a_job_lock_handed_to_a_worker_whose_clock_is_behind_is_no_overlap():
    """CHAOS_SEED=21 CHAOS_EXAMPLES=40, example 9. At 12:15:00 host:0 recorded a hung run timed out and
    released the job's lock; in the same instant host:2, its clock 0.1 s behind, took the lock and recorded
    its run's start as 12:14:59.9. The sources never overlapped (the ledger saw none); the records only
    seemed to."""

    def steps(m: ChaosMachine) -> None:
        m.start([("*/2 * * * *", "cancel_running", 2, 60, 0), ("*/2 * * * *", "queue", 2, 10, 0)], 23)
        m.clock_jumps(2, -1)
        m.time_passes(246)
        m.edit_schedule(9, "*/2 * * * *")
        m.time_passes(163)
        m.edit_schedule(7, "* * * * *")
        m.sync_behaves(9, "hang", 149)
        m.graceful_stop(1)
        m.time_passes(515)
        m.time_passes(518)
        m.pause(1, 36, 14)
        m.toggle(5)
        m.time_passes(104)
        m.time_passes(33)
        m.restart(0)
        m.sync_behaves(6, "fail", 23)
        m.time_passes(379)
        m.toggle(5)
        m.sync_behaves(2, "fail", 99)
        m.edit_schedule(2, "*/2 * * * *")
        m.run_now(8)
        m.pause(2, 39, 30)
        m.delete(3)
        m.time_passes(400)
        m.outage(15, 51, "syncjobs.update_many")

    assert "no_two_runs_of_a_job_overlap" not in findings_of(steps)


def test_a_leader_paused_past_its_lease_mid_fire_adds_no_second_record_of_a_slot():
    """CHAOS_SEED=22 CHAOS_EXAMPLES=40, example 39. host:1 led (lease to 03:34:30) and was paused as it
    fired the 03:34 slot; host:0 took the lease at 03:34:30 and recorded that slot of active-1 (misfire grace
    0) in a missed range; at 03:34:33 host:1 woke and inserted its queued 03:34 execution, later skipped as
    missed. Its fenced nextRunAt update matched nothing, but the insert had landed: two records of one
    slot."""

    def steps(m: ChaosMachine) -> None:
        m.start([("* * * * *", "skip", 2, 60, 60), ("* * * * *", "cancel_running", 2, 30, 0)], 75)
        m.graceful_stop(2)
        m.crash(2, 38)
        m.renewals_fail(2, 19)
        m.outage(3, 27, "syncjobs.update_many")
        m.crash(2, 0)
        m.pause(1, 34, 30)
        m.graceful_stop(2)
        m.outage(1, 52, "job_execution_locks.update_one")
        m.crash(1, 27)
        m.clock_jumps(0, -1)
        m.crash(0, 40)
        m.pause(0, 6, 6)
        m.crash(2, 18)
        m.renewals_fail(0, 147)
        m.outage(10, 11, "job_executions.find_one_and_update")
        m.renewals_fail(0, 80)
        m.graceful_stop(2)
        m.crash(2, 32)
        m.restart(1)
        m.pause(1, 33, 28)
        m.crash(2, 36)
        m.crash(1, 30)
        m.graceful_stop(0)
        m.restart(2)

    assert "every_slot_has_exactly_one_record" not in findings_of(steps)
