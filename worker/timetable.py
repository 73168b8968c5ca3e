"""The in-memory timetable: jobs grouped by (cron, time zone), one heap entry per group.

Jobs that share a cron and a zone share their fire times, so each group costs one croniter call per
fire however many jobs it holds, and the scheduler needs one timer for the nearest group only.
"""

import heapq
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from bson import ObjectId

from models.cron import next_fire_time

GroupKey = tuple[str, str]
# Moving or removing a group leaves its old heap entry behind until it is popped; past this many spare
# entries the heap is rebuilt from the live groups, so a job edited 100,000 times costs no memory.
SPARE_ENTRIES = 1024


@dataclass
class Group:
    key: GroupKey
    next_fire: datetime | None
    job_ids: set[ObjectId] = field(default_factory=set)
    entry: int = 0  # the heap entry that is live for this group; older ones are skipped when popped


class Timetable:
    """Every enabled job of the leader, by group, and the heap of the groups' next fire times."""

    def __init__(self) -> None:
        self._groups: dict[GroupKey, Group] = {}
        self._group_of: dict[ObjectId, GroupKey] = {}
        self._heap: list[tuple[datetime, int, GroupKey]] = []
        self._entries = itertools.count()

    def __len__(self) -> int:
        return len(self._group_of)

    def __contains__(self, job_id: ObjectId) -> bool:
        return job_id in self._group_of

    def put(self, job_id: ObjectId, cron: str, timezone: str, now: datetime) -> datetime | None:
        """Schedule a job (again); returns its next fire time."""
        key = (cron, timezone)
        if self._group_of.get(job_id) != key:
            self.remove(job_id)
            group = self._groups.get(key)
            if group is None:
                group = self._groups[key] = Group(key, None)
                self._arm(group, next_fire_time(cron, now, timezone))
            group.job_ids.add(job_id)
            self._group_of[job_id] = key
        return self._groups[key].next_fire

    def remove(self, job_id: ObjectId) -> None:
        key = self._group_of.pop(job_id, None)
        if key is None:
            return
        group = self._groups[key]
        group.job_ids.discard(job_id)
        if not group.job_ids:
            del self._groups[key]  # its heap entry goes stale and is dropped when reached

    def next_fire(self) -> datetime | None:
        """The nearest fire time of any job."""
        while self._heap:
            moment, entry, key = self._heap[0]
            group = self._groups.get(key)
            if group is not None and group.entry == entry:
                return moment
            heapq.heappop(self._heap)
        return None

    def pop_due(self, now: datetime) -> Iterator[tuple[datetime, GroupKey, list[ObjectId]]]:
        """(slot, group, job ids) for every group due by `now`, earliest first. Each group moves on to its
        first slot after `now`: a late wake-up fires the overdue slot once, not every slot it missed."""
        while (moment := self.next_fire()) is not None and moment <= now:
            _, _, key = heapq.heappop(self._heap)
            group = self._groups[key]
            self._arm(group, next_fire_time(key[0], max(moment, now), key[1]))
            yield moment, key, list(group.job_ids)

    def next_fire_of(self, job_id: ObjectId) -> datetime | None:
        key = self._group_of.get(job_id)
        return self._groups[key].next_fire if key else None

    def group_of(self, job_id: ObjectId) -> GroupKey | None:
        return self._group_of.get(job_id)

    def group_next(self, key: GroupKey) -> datetime | None:
        group = self._groups.get(key)
        return group.next_fire if group else None

    def _arm(self, group: Group, moment: datetime | None) -> None:
        group.next_fire = moment
        group.entry = next(self._entries)
        if moment is not None:
            heapq.heappush(self._heap, (moment, group.entry, group.key))
        if len(self._heap) > 2 * len(self._groups) + SPARE_ENTRIES:
            self._heap = [
                (live.next_fire, live.entry, live.key)
                for live in self._groups.values()
                if live.next_fire is not None
            ]
            heapq.heapify(self._heap)
