"""Starting bench/seeded_mongoeco.py from our Python: a wire server holding one seeded collection.

bench/seeded_mongoeco.py (run by `.venv-mongo`, Python 3.13) seeds its engine in-process, because mongoeco's
wire `insert` costs O(n) per document; its docstring says why, and why it skips mongoeco's uniqueness scans
while it seeds. This side writes the seed file and production's indexes for the collection
(`models.collections.INDEXES`), checks the documents' unique keys itself, and waits for the server's report.
"""

import json
import selectors
import subprocess
import tempfile
from pathlib import Path

SCRIPT = Path(__file__).with_name("seeded_mongoeco.py")


def unique_keys_hold(docs: list[dict], collection: str) -> None:
    """The seed's keys are unique for every unique index of `collection` (bench/seeded_mongoeco.py skips
    mongoeco's own checks while it seeds)."""
    from models.collections import INDEXES

    for model in INDEXES.get(collection, []):
        spec = model.document
        if not spec.get("unique"):
            continue
        partial = spec.get("partialFilterExpression", {})
        covered = [doc for doc in docs if all(doc.get(field) == value for field, value in partial.items())]
        keys = {tuple(doc.get(field) for field in spec["key"]) for doc in covered}
        assert len(keys) == len(covered), f"the seed breaks the unique index {spec['name']}"
    assert len({doc["_id"] for doc in docs}) == len(docs), "the seed repeats an _id"


def start_seeded_mongoeco(
    docs: list[dict], db_name: str, collection: str, timeout_s: float = 1800
) -> tuple[subprocess.Popen, dict]:
    """bench/seeded_mongoeco.py holding `docs` (each with its `_id`) in `db_name`.`collection`, with
    production's indexes for that collection; its report ({uri, documents, seconds, msPerDocument}). Stop it
    by closing its stdin (or terminate())."""
    import bson
    from bson import json_util

    from models.collections import INDEXES
    from tests.wire.process import MONGO_PYTHON

    if not MONGO_PYTHON.exists():
        raise SystemExit(
            f"{MONGO_PYTHON} is missing: run `make test` (it makes .venv-mongo) or set MONGODB_URL"
        )
    unique_keys_hold(docs, collection)
    with tempfile.TemporaryDirectory() as folder:
        seed, indexes = Path(folder, "seed.bson"), Path(folder, "indexes.json")
        seed.write_bytes(b"".join(bson.encode(doc) for doc in docs))
        indexes.write_text(json_util.dumps([model.document for model in INDEXES.get(collection, [])]))
        process = subprocess.Popen(
            [str(MONGO_PYTHON), str(SCRIPT), str(seed), db_name, collection, str(indexes)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout_s):
                process.kill()
                raise SystemExit(f"the seeded mongoeco server did not answer within {timeout_s:.0f} s")
        line = process.stdout.readline()
    if not line.startswith("{"):
        process.kill()
        raise SystemExit("the seeded mongoeco server did not start")
    return process, json.loads(line)
