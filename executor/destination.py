"""Writing records to a MongoDB destination: one collection per entity, upserts by primary key, in batches.

Full mode writes into a staging collection per entity and swaps it in (renameCollection with dropTarget)
only when the run succeeds, so a failed or canceled run leaves the previous data as it was.
"""

from datetime import datetime
from typing import Any

from models.driver import upsert_by_id

STAGING_SUFFIX = "__syncjobs_staging_"


class MissingPrimaryKey(ValueError):
    pass


class MongoWriter:
    def __init__(self, db, *, full: bool, prefix: str, batch_size: int, execution_id: str, now: datetime):
        self._db = db
        self._full = full
        self._prefix = prefix
        self._batch_size = batch_size
        self._staging_suffix = f"{STAGING_SUFFIX}{execution_id}"
        self._now = now
        self._batches: dict[str, list[dict[str, Any]]] = {}
        self._touched: set[str] = set()
        self.written: dict[str, int] = {}

    def target(self, entity: str) -> str:
        return f"{self._prefix}{entity}"

    def _collection_for(self, entity: str):
        name = self.target(entity)
        return self._db[name + self._staging_suffix if self._full else name]

    async def add(self, entity: str, data: dict[str, Any], primary_key: str) -> None:
        """Queue a record; a full batch is written before this returns, which is the back-pressure."""
        if primary_key not in data or data[primary_key] is None:
            raise MissingPrimaryKey(f"record of {entity!r} has no {primary_key!r}")
        doc = {**data, "_id": data[primary_key], "_syncedAt": self._now}
        batch = self._batches.setdefault(entity, [])
        batch.append(doc)
        self._touched.add(entity)
        if len(batch) >= self._batch_size:
            await self._flush(entity)

    async def flush(self) -> None:
        for entity in list(self._batches):
            await self._flush(entity)

    async def _flush(self, entity: str) -> None:
        batch = self._batches.pop(entity, [])
        if batch:
            await upsert_by_id(self._collection_for(entity), batch)
            self.written[entity] = self.written.get(entity, 0) + len(batch)

    async def commit(self, entities: list[str]) -> None:
        """Make the run's writes the destination's data. In full mode each entity synced (and each named in
        `entities` that came back empty) is replaced whole."""
        await self.flush()
        if not self._full:
            return
        for entity in sorted(self._touched | set(entities)):
            if entity in self._touched:
                await self._collection_for(entity).rename(self.target(entity), dropTarget=True)
            else:
                await self._db[self.target(entity)].delete_many({})

    async def abort(self) -> None:
        """Throw away a failed full run's staging collections; incremental upserts already written stay."""
        self._batches.clear()
        if self._full:
            for entity in self._touched:
                await self._collection_for(entity).drop()
