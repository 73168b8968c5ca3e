"""Writing records to a MongoDB destination: one collection per entity, upserts by primary key, in batches.

Full mode writes into a staging collection per entity and swaps it in (renameCollection with dropTarget)
only when the run succeeds, so a failed or canceled run leaves the previous data as it was.
"""

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from pymongo import AsyncMongoClient, uri_parser

from models.destination import effective_database
from models.driver import upsert_by_id
from models.namespaces import NamespaceRefused, check_collection, check_destination_database
from models.network_policy import AddressRefused, NetworkPolicy, literal_address

STAGING_SUFFIX = "__syncjobs_staging_"


class RecordRefused(ValueError):
    """A record that cannot be written: counted as failed, the run goes on."""


class MissingPrimaryKey(RecordRefused):
    pass


class DestinationRefused(Exception):
    """The destination names a database or a host the workspace may not write to."""


@contextlib.asynccontextmanager
async def destination_database(
    service_db, workspace_id: str, destination: dict[str, Any], *, policy: NetworkPolicy
) -> AsyncIterator[Any]:
    """The database a run writes to, checked here, where the write happens, whatever the document says:
    without `url` the workspace's own database on the service's client, never the service's own or
    MongoDB's; with `url` a client opened (and closed) for this run, once every host passed the policy."""
    name = effective_database(workspace_id, destination)
    url = destination.get("url")
    try:
        check_destination_database(name, service_database=None if url else service_db.name)
        if url:
            await check_cluster_hosts(url, policy)
    except (NamespaceRefused, AddressRefused) as refused:
        raise DestinationRefused(str(refused)) from None
    if not url:
        yield service_db.client[name]
        return
    client = AsyncMongoClient(url, tz_aware=True)
    try:
        yield client[name]
    finally:
        await client.close()


async def check_cluster_hosts(url: str, policy: NetworkPolicy) -> None:
    """Every host of a MongoDB URL (an SRV name resolved to its hosts) passes the policy after DNS.

    The driver resolves the names again when it connects and follows the members a replica set announces,
    so unlike the HTTP connector this check is not pinned to the addresses it saw (see README)."""
    try:
        nodes = (await asyncio.to_thread(uri_parser.parse_uri, url, connect_timeout=10))["nodelist"]
    except Exception:
        raise AddressRefused("the destination URL's hosts could not be resolved") from None
    loop = asyncio.get_running_loop()
    for host, port in nodes:
        literal = literal_address(host)
        if literal is not None:
            addresses = [str(literal)]
        else:
            try:
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except OSError:
                raise AddressRefused(f"{host} could not be resolved") from None
            addresses = [info[4][0] for info in infos]
        policy.check(host, addresses)


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
        """The collection of an entity; NamespaceRefused when the name is MongoDB's or malformed (an entity
        name comes from the source's output, so it is checked here, not only at input)."""
        name = f"{self._prefix}{entity}"
        check_collection(name)
        return name

    def _collection_for(self, entity: str):
        name = self.target(entity)
        return self._db[name + self._staging_suffix if self._full else name]

    async def add(self, entity: str, data: dict[str, Any], primary_key: str) -> None:
        """Queue a record; a full batch is written before this returns, which is the back-pressure."""
        try:
            self.target(entity)
        except NamespaceRefused as refused:
            raise RecordRefused(str(refused)) from None
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
