"""The one place where clients differ: each difference is found by trying, and a bug of ours is never taken
for a missing capability."""

import pytest

from models.driver import upsert_by_id


class Collection:
    def __init__(self, bulk_error: Exception | None):
        self.bulk_error = bulk_error
        self.bulk_calls = 0
        self.replaced: list[dict] = []

    async def bulk_write(self, requests, ordered):
        self.bulk_calls += 1
        if self.bulk_error:
            raise self.bulk_error

    async def replace_one(self, query, doc, upsert):
        self.replaced.append(doc)


class NoBulkReplace(Collection):
    pass


async def test_a_client_whose_bulk_write_cannot_replace_is_tried_once_then_written_one_by_one():
    first = NoBulkReplace(TypeError("add_replace() got an unexpected keyword argument 'sort'"))
    await upsert_by_id(first, [{"_id": 1}, {"_id": 2}])
    second = NoBulkReplace(None)
    await upsert_by_id(second, [{"_id": 3}])
    assert first.bulk_calls == 1 and [d["_id"] for d in first.replaced] == [1, 2]
    assert second.bulk_calls == 0 and [d["_id"] for d in second.replaced] == [3]


async def test_a_type_error_of_ours_is_not_taken_for_a_missing_capability():
    collection = Collection(TypeError("unhashable type: 'dict'"))
    with pytest.raises(TypeError, match="unhashable"):
        await upsert_by_id(collection, [{"_id": 1}])
    assert collection.replaced == []
