"""The database handle, opened only by entry points, and the few calls where driver and mock differ."""

import inspect
from dataclasses import dataclass
from typing import Any

from pymongo import AsyncMongoClient, ReplaceOne

from models.settings import Settings


@dataclass
class Database:
    """A client and the database it serves; whoever opened it closes it."""

    client: Any
    db: Any
    in_memory: bool

    async def close(self) -> None:
        await maybe_await(self.client.close())


def open_database(settings: Settings) -> Database:
    """The real server at MONGODB_URL, or an in-memory database when it is unset."""
    if settings.mongodb_url:
        client: AsyncMongoClient = AsyncMongoClient(settings.mongodb_url, tz_aware=True)
        return Database(client, client[settings.mongodb_db], in_memory=False)
    return open_in_memory(settings.mongodb_db)


def open_in_memory(name: str = "syncjobs") -> Database:
    from mongomock_motor import AsyncMongoMockClient

    client: Any = AsyncMongoMockClient(tz_aware=True)
    return Database(client, client[name], in_memory=True)


async def maybe_await(value):
    # PyMongo's async API returns coroutines where mongomock-motor returns values (close).
    if inspect.isawaitable(value):
        return await value
    return value


async def upsert_by_id(collection, docs: list[dict]) -> None:
    """Replace-or-insert each document by its _id: one bulk call on a server; one call per document on the
    in-memory database, whose bulk_write cannot replace (mongomock 4.3)."""
    if not docs:
        return
    if type(collection).__module__.startswith("pymongo"):
        await collection.bulk_write(
            [ReplaceOne({"_id": doc["_id"]}, doc, upsert=True) for doc in docs], ordered=False
        )
        return
    for doc in docs:
        await collection.replace_one({"_id": doc["_id"]}, doc, upsert=True)
