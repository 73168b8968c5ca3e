"""Execution statistics over a period: counts by status, success rate, duration percentiles, records
written, and a per-day series. One aggregation on indexed fields (`workspace_period`, or `job_history` for
one job); percentiles are taken in Python from the durations the aggregation groups, because `$percentile`
(MongoDB 7) is on neither the in-memory database nor older servers."""

from datetime import datetime, timedelta
from typing import Any

from models.collections import JOB_EXECUTIONS
from models.driver import aggregate
from models.errors import ValidationFailed

MAX_DAYS = 366
# Outcomes of runs that ran to an end of their own; the success rate is succeeded among them.
RATED = ("succeeded", "failed", "timed_out", "abandoned")


def parse_days(text: str | None, default: int = 30) -> int:
    try:
        days = default if text is None else int(text)
    except ValueError:
        days = 0
    if not 1 <= days <= MAX_DAYS:
        raise ValidationFailed(
            "Invalid days", details=[{"field": "days", "message": f"an integer from 1 to {MAX_DAYS}"}]
        )
    return days


def percentile(sorted_values: list[int], fraction: float) -> int | None:
    """Nearest-rank percentile of an ascending list; None when it is empty."""
    if not sorted_values:
        return None
    rank = -(-len(sorted_values) * fraction // 1)  # ceil
    return sorted_values[max(0, int(rank) - 1)]


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def period_start(now: datetime, days: int) -> datetime:
    """Midnight UTC starting the period: `days` calendar days, today included."""
    return (now - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


def period_match(*, workspace_id: str, now: datetime, days: int, job_id=None) -> dict[str, Any]:
    """The executions of the period: a range on `queuedAt` behind an equality on the index's first field."""
    match: dict[str, Any] = {
        "workspaceId": workspace_id,
        "queuedAt": {"$gte": period_start(now, days), "$lte": now},
    }
    if job_id is not None:
        match = {"jobId": job_id, **match}
    return match


def statistics_pipeline(match: dict[str, Any]) -> list[dict[str, Any]]:
    """Count, durations and records written per day and status, in one pass over the period's executions.
    The records written were once a second aggregation (`$unwind` of the entities): a second scan of the same
    executions, which doubled the time on mongoeco (bench/statistics_scale.py); here each execution's entities
    are summed where it is read."""
    return [
        {"$match": match},
        {
            "$project": {
                "_id": 0,
                "day": {"$dateToString": {"format": "%Y-%m-%d", "date": "$queuedAt"}},
                "status": 1,
                "durationMs": 1,
                # Written records live per entity in stats.entities.<name>.written.
                "entities": {"$objectToArray": {"$ifNull": ["$stats.entities", {}]}},
            }
        },
        {
            "$group": {
                "_id": {"day": "$day", "status": "$status"},
                "count": {"$sum": 1},
                "durations": {"$push": "$durationMs"},
                # "$entities.v.written" is the array of the entities' counts; the inner $sum adds it up.
                "written": {"$sum": {"$sum": "$entities.v.written"}},
            }
        },
    ]


async def execution_statistics(
    db, *, workspace_id: str, now: datetime, days: int, job_id=None
) -> dict[str, Any]:
    """Executions queued in the last `days` days (up to `now`), of a workspace or one of its jobs."""
    start = period_start(now, days)
    match = period_match(workspace_id=workspace_id, now=now, days=days, job_id=job_id)
    rows = await aggregate(db[JOB_EXECUTIONS], statistics_pipeline(match))
    counts: dict[str, int] = {}
    all_durations: list[int] = []
    per_day: dict[str, dict[str, Any]] = {}
    for row in rows:
        day, status = row["_id"]["day"], row["_id"]["status"]
        durations = [value for value in row["durations"] if value is not None]
        counts[status] = counts.get(status, 0) + row["count"]
        all_durations.extend(durations)
        bucket = per_day.setdefault(day, {"counts": {}, "durations": []})
        bucket["counts"][status] = row["count"]
        bucket["durations"].extend(durations)
    all_durations.sort()
    rated = sum(counts.get(status, 0) for status in RATED)
    series = []
    for offset in range(days):
        day = (start + timedelta(days=offset)).strftime("%Y-%m-%d")
        bucket = per_day.get(day, {"counts": {}, "durations": []})
        durations = sorted(bucket["durations"])
        series.append(
            {
                "date": day,
                "counts": bucket["counts"],
                "durationMs": {"p50": percentile(durations, 0.5), "p95": percentile(durations, 0.95)},
            }
        )
    return {
        "from": iso(start),
        "to": iso(now),
        "days": days,
        "total": sum(counts.values()),
        "counts": counts,
        "successRate": round(counts.get("succeeded", 0) / rated, 4) if rated else None,
        "durationMs": {
            "p50": percentile(all_durations, 0.5),
            "p95": percentile(all_durations, 0.95),
            "max": all_durations[-1] if all_durations else None,
        },
        "recordsWritten": int(sum(row["written"] for row in rows)),
        "perDay": series,
    }
