"""A mongoeco wire-protocol server that seeds one collection in-process before it serves, for the benchmarks.

    .venv-mongo/bin/python bench/seeded_mongoeco.py SEED.bson DATABASE COLLECTION INDEXES.json

Run by the Python 3.13+ of `.venv-mongo`; it imports nothing of ours. It creates the indexes of INDEXES.json
(the index documents of a `createIndexes` command, in extended JSON: the bench passes production's), reads
SEED.bson (BSON documents one after another), inserts them with mongoeco's own `insert_many` in batches, then
serves that engine on a free loopback port and prints one JSON line: {"uri", "documents", "seconds",
"msPerDocument"}. It serves until its stdin closes or SIGTERM.

Why in-process: the wire `insert` command of mongoeco 4.11 inserts document by document, and each single
insert scans the whole collection for a duplicate `_id` (memory engine, `scan_payload_id`), so seeding over
the wire costs O(n) per document (measured here: 1.3 ms a document into an empty collection, 15 ms at 2,500,
quadratic in all). A batch of `insert_many` in-process checks `_id`s against the storage keys instead: about
1 ms a document whatever the size.

Unique compound indexes: mongoeco checks them by comparing the new document with every stored one (only
single-field unique indexes are looked up), in a build as in an insert: the production index
`one_per_slot_attempt` took 82 s to build over 1,200 executions and made each insert cost 54 ms at 800. So the
seeding skips those uniqueness scans (`unique_checks_skipped`); the indexes are there from the start and
maintained insert by insert, and the bench checks its documents' unique keys itself before writing the file.
The checks are back before the server serves.
"""

import asyncio
import json
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import bson
import mongoeco
from bson import json_util
from mongoeco.engines.memory import MemoryEngine
from mongoeco.wire import AsyncMongoEcoProxyServer

BATCH = 5000


def batches(path: str):
    """The seed file's documents, BATCH at a time (read before the server serves anything)."""
    options = bson.CodecOptions(tz_aware=True)
    with open(path, "rb") as seed_file:
        batch = []
        for document in bson.decode_file_iter(seed_file, options):
            batch.append(document)
            if len(batch) == BATCH:
                yield batch
                batch = []
        if batch:
            yield batch


@contextmanager
def unique_checks_skipped():
    """mongoeco's uniqueness scans off (see the docstring): the caller vouches that the keys are unique."""
    checks = MemoryEngine._ensure_unique_indexes
    MemoryEngine._ensure_unique_indexes = lambda *args, **kwargs: None
    try:
        yield
    finally:
        MemoryEngine._ensure_unique_indexes = checks


async def seed(client, path: str, db_name: str, collection: str, indexes: list[dict]) -> int:
    target = client[db_name][collection]
    count = 0
    with unique_checks_skipped():
        if indexes:
            await client[db_name].command({"createIndexes": collection, "indexes": indexes})
        for batch in batches(path):
            await target.insert_many(batch)
            count += len(batch)
    return count


def stop_when_stdin_closes(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    def wait() -> None:
        sys.stdin.read()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=wait, daemon=True).start()


async def main(path: str, db_name: str, collection: str, indexes: list[dict]) -> None:
    # mongoeco refuses a blocking stage ($group, and so count_documents) over more than 50,000 documents
    # unless it may spill; MongoDB bounds a stage by memory (100 MB), which a period's groups stay far
    # below. The limit is lifted here; the default test server answers such an aggregation with an error.
    client = mongoeco.AsyncMongoClient(MemoryEngine(aggregation_materialization_limit=None))
    started = time.perf_counter()
    count = await seed(client, path, db_name, collection, indexes)
    seconds = time.perf_counter() - started
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    stop_when_stdin_closes(loop, stop)
    async with AsyncMongoEcoProxyServer(client=client, host="127.0.0.1", port=0) as server:
        report = {
            "uri": server.address.uri,
            "documents": count,
            "seconds": round(seconds, 1),
            "msPerDocument": round(seconds * 1000 / max(count, 1), 3),
        }
        sys.stdout.write(json.dumps(report) + "\n")
        sys.stdout.flush()
        await stop.wait()


if __name__ == "__main__":
    path, db_name, collection, indexes_path = sys.argv[1:5]
    asyncio.run(main(path, db_name, collection, json_util.loads(Path(indexes_path).read_text())))
