"""The database handle, opened only by entry points."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError
from pymongo.uri_parser import parse_uri

from models.errors import SyncJobsError
from models.settings import Settings


class InMemoryUnavailable(SyncJobsError):
    """The in-memory database needs mongomock-motor: pip install 'syncjobs[dev]'."""


class DatabaseRequired(SyncJobsError):
    """MONGODB_URL is unset: this process would keep everything in a private in-memory database that no other
    process shares and that dies with it; set MONGODB_URL (or pass --in-memory to try it alone)."""

    def __init__(self) -> None:
        super().__init__(" ".join((self.__doc__ or "").split()))


class DatabaseUnreachable(SyncJobsError):
    """MongoDB did not answer."""


@dataclass
class Database:
    """A client and the database it serves; whoever opened it closes it."""

    client: Any
    db: Any
    in_memory: bool
    # Chosen by the opener, who knows the client: PyMongo's close is a coroutine, the double's a plain call.
    _close: Callable[[], Awaitable[None]]
    # Where it points, for messages: hosts only, never the credentials of the URL.
    hosts: str = "memory"

    async def close(self) -> None:
        await self._close()


def open_database(settings: Settings) -> Database:
    """The server at MONGODB_URL, or an in-memory database when it is unset."""
    if settings.mongodb_url:
        timeout_ms = int(settings.mongodb_connect_timeout_seconds * 1000)
        client: AsyncMongoClient = AsyncMongoClient(
            settings.mongodb_url,
            tz_aware=True,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
        )
        hosts = ",".join(f"{host}:{port}" for host, port in parse_uri(settings.mongodb_url)["nodelist"])
        return Database(
            client, client[settings.mongodb_db], in_memory=False, _close=client.close, hosts=hosts
        )
    return open_in_memory(settings.mongodb_db)


async def open_reachable(settings: Settings) -> Database:
    """`open_database`, then one ping: a server that does not answer within MONGODB_CONNECT_TIMEOUT_SECONDS
    is one clear error naming its hosts, not a hang and a driver traceback."""
    database = open_database(settings)
    try:
        await database.db.command("ping")
    except PyMongoError as error:
        await database.close()
        seconds = settings.mongodb_connect_timeout_seconds
        raise DatabaseUnreachable(
            f"MongoDB at {database.hosts} did not answer within {seconds:g} s "
            f"(MONGODB_CONNECT_TIMEOUT_SECONDS): {type(error).__name__}"
        ) from error
    return database


def open_in_memory(name: str = "syncjobs") -> Database:
    try:
        from mongomock_motor import AsyncMongoMockClient
    except ImportError as error:
        raise InMemoryUnavailable() from error

    client: Any = AsyncMongoMockClient(tz_aware=True)

    async def close() -> None:
        client.close()

    return Database(client, client[name], in_memory=True, _close=close)
