"""The chaos suite's reading of the execution records: what counts as two runs of a job at once when the
records come from worker clocks that differ (tests/worker/chaos_world.py, `overlapping_records`)."""

from datetime import UTC, datetime, timedelta

from bson import ObjectId

from tests.worker.chaos_world import overlapping_records

JOB = ObjectId()
SPREAD = timedelta(seconds=0.1)


def at(clock: str) -> datetime:
    return datetime.fromisoformat(f"2030-01-07T{clock}").replace(tzinfo=UTC)


def run(worker: str, started: str, finished: str | None, status: str = "timed_out") -> dict:
    return {
        "_id": ObjectId(),
        "jobId": JOB,
        "workerId": worker,
        "status": status,
        "startedAt": at(started),
        "finishedAt": finished and at(finished),
    }


def test_a_lock_handed_at_once_to_a_clock_behind_is_no_overlap():
    # CHAOS_SEED=21 example 9: at 12:15:00 host:0 recorded its run timed out and released the job's lock; in
    # the same instant host:2, its clock 0.1 s behind, took the lock and recorded its start.
    records = [run("host:0", "12:14:00", "12:15:00"), run("host:2", "12:14:59.900", "12:15:59.900")]
    assert overlapping_records(records, clock_spread=SPREAD) == []


def test_an_instant_run_then_a_handover_to_a_clock_behind_is_no_overlap():
    # The second run's recorded start sorts before the first's: it still followed it.
    records = [run("host:0", "12:15:00", "12:15:00", "succeeded"), run("host:2", "12:14:59.900", "12:16:00")]
    assert overlapping_records(records, clock_spread=SPREAD) == []


def test_a_run_started_while_another_ran_is_an_overlap_whatever_the_clocks():
    records = [run("host:0", "12:14:00", "12:15:00"), run("host:2", "12:14:59.800", "12:15:59.800")]
    [finding] = overlapping_records(records, clock_spread=SPREAD)
    assert str(records[0]["_id"]) in finding and str(records[1]["_id"]) in finding


def test_a_run_that_began_and_ended_inside_another_is_an_overlap():
    records = [
        run("host:0", "12:14:00", "12:15:00"),
        run("host:1", "12:14:20", "12:14:20", "succeeded"),
        run("host:2", "12:15:00", "12:16:00"),
    ]
    [finding] = overlapping_records(records, clock_spread=SPREAD)
    assert str(records[1]["_id"]) in finding


def test_with_every_clock_on_time_a_millisecond_of_overlap_counts():
    handover = [run("host:0", "12:14:00", "12:15:00"), run("host:1", "12:15:00", "12:16:00")]
    overlap = [run("host:0", "12:14:00", "12:15:00"), run("host:1", "12:14:59.999", "12:16:00")]
    assert overlapping_records(handover, clock_spread=timedelta(0)) == []
    assert len(overlapping_records(overlap, clock_spread=timedelta(0))) == 1


def test_a_run_still_recorded_as_running_overlaps_every_run_after_it():
    records = [
        run("host:0", "12:14:00", None, "running"),
        run("host:1", "12:20:00", "12:21:00"),
        run("host:2", "13:00:00", "13:01:00"),
    ]
    assert len(overlapping_records(records, clock_spread=SPREAD)) == 2


def test_runs_of_different_jobs_never_overlap_each_other():
    other = run("host:1", "12:14:30", "12:15:30") | {"jobId": ObjectId()}
    assert overlapping_records([run("host:0", "12:14:00", "12:15:00"), other], clock_spread=SPREAD) == []
