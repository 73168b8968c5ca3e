"""A cheap sign that jobs changed: one counter that every user edit of a job raises after its write.

The polling feed reads this one document at each poll and reads the jobs themselves only when it moved, so
an idle worker costs one read by _id per poll however many jobs there are; a database without indexes (the
in-memory one) would otherwise scan every job at every poll. The raise comes after the job's write, so a
reader that sees it sees the job. A writer that dies between the two, or an edit made by hand in the mongo
shell, reaches the schedule at the next resync instead, as a delete does.
"""

from datetime import datetime

from models.collections import CHANGE_MARKS

MARK_ID = "syncjobs"


class JobChangeMark:
    def __init__(self, db):
        self._marks = db[CHANGE_MARKS]

    async def bump(self, now: datetime) -> None:
        """Say that a job was created or edited (after the write itself)."""
        await self._marks.update_one(
            {"_id": MARK_ID}, {"$inc": {"seq": 1}, "$set": {"changedAt": now}}, upsert=True
        )

    async def current(self) -> int:
        """The counter as it stands: 0 before the first edit ever."""
        doc = await self._marks.find_one({"_id": MARK_ID}, {"seq": 1})
        return doc["seq"] if doc else 0
