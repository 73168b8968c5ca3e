"""Where the clients syncjobs runs on differ, decided by what each can do, never by its type.

Two clients: pymongo's `AsyncMongoClient` (any server: MongoDB, a wire-protocol server) and the in-memory
double, mongomock-motor (`syncjobs dev --in-memory`, the tests). Everything else calls both the same way.
"""

import inspect

from pymongo import ReplaceOne


class ChangeStreamsUnavailable(Exception):
    """This client offers no change streams."""


async def open_change_stream(collection, pipeline: list[dict], *, resume_after):
    """`collection.watch(...)`, awaited as PyMongo's async API wants. Raises ChangeStreamsUnavailable where
    the client has no watch at all (the in-memory double: there `collection.watch` is a sub-collection)."""
    if not callable(getattr(type(collection), "watch", None)):
        raise ChangeStreamsUnavailable("this client has no change streams (the in-memory database)")
    return await collection.watch(pipeline, resume_after=resume_after)


# Collection classes whose bulk_write cannot replace: found by trying once, then not tried again.
_no_bulk_replace: set[type] = set()


async def upsert_by_id(collection, docs: list[dict]) -> None:
    """Replace-or-insert each document by its _id: one bulk call where the client can, else one call each."""
    if not docs:
        return
    if type(collection) not in _no_bulk_replace:
        try:
            await collection.bulk_write(
                [ReplaceOne({"_id": doc["_id"]}, doc, upsert=True) for doc in docs], ordered=False
            )
            return
        except TypeError as error:
            # mongomock 4.3 passes a `sort` keyword its own replace builder does not take, before writing
            # anything. Any other TypeError is a bug of ours and goes up.
            if "'sort'" not in str(error):
                raise
            _no_bulk_replace.add(type(collection))
    for doc in docs:
        await collection.replace_one({"_id": doc["_id"]}, doc, upsert=True)


async def aggregate(collection, pipeline: list[dict]) -> list[dict]:
    """Every document of an aggregation. PyMongo's async `aggregate` is a coroutine giving a cursor; the
    in-memory double's gives the cursor itself: awaited only where there is something to await."""
    cursor = collection.aggregate(pipeline)
    if inspect.isawaitable(cursor):
        cursor = await cursor
    return await cursor.to_list(None)
