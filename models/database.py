"""The database handle, opened only by entry points."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pymongo import AsyncMongoClient

from models.errors import SyncJobsError
from models.settings import Settings


class InMemoryUnavailable(SyncJobsError):
    """The in-memory database needs mongomock-motor: pip install 'syncjobs[dev]'."""


@dataclass
class Database:
    """A client and the database it serves; whoever opened it closes it."""

    client: Any
    db: Any
    in_memory: bool
    # Chosen by the opener, who knows the client: PyMongo's close is a coroutine, the double's a plain call.
    _close: Callable[[], Awaitable[None]]

    async def close(self) -> None:
        await self._close()


def open_database(settings: Settings) -> Database:
    """The server at MONGODB_URL, or an in-memory database when it is unset (`--in-memory` only)."""
    if settings.mongodb_url:
        client: AsyncMongoClient = AsyncMongoClient(
            settings.mongodb_url,
            tz_aware=True,
            serverSelectionTimeoutMS=int(settings.mongodb_connect_timeout_seconds * 1000),
            connectTimeoutMS=int(settings.mongodb_connect_timeout_seconds * 1000),
        )
        return Database(client, client[settings.mongodb_db], in_memory=False, _close=client.close)
    return open_in_memory(settings.mongodb_db)


def open_in_memory(name: str = "syncjobs") -> Database:
    try:
        from mongomock_motor import AsyncMongoMockClient
    except ImportError as error:
        raise InMemoryUnavailable() from error

    client: Any = AsyncMongoMockClient(tz_aware=True)

    async def close() -> None:
        client.close()

    return Database(client, client[name], in_memory=True, _close=close)
