"""Read-change-write of one versioned document, the way every PATCH (and toggle) in this API updates."""

from datetime import datetime

from api.etags import check_version
from models.errors import VersionMismatch
from models.workspace_store import WorkspaceStore

# How often a read-change-write is tried again when another writer slips in between.
REWRITE_ATTEMPTS = 5


async def rewrite(
    store: WorkspaceStore, workspace_id: str, doc_id, *, wanted: int | None, change, now: datetime
):
    """Read the document, derive its new fields with `await change(current)`, write them only if nobody
    wrote in between. With If-Match (`wanted`) a conflict is the client's to resolve (412); without, the
    read-change-write is tried again. Returns the document as written."""
    for _ in range(REWRITE_ATTEMPTS):
        current = await store.get(workspace_id, doc_id)
        check_version(current, wanted)
        fields = await change(current)
        try:
            return await store.update(workspace_id, doc_id, fields, now, expected_version=current["version"])
        except VersionMismatch:
            if wanted is not None:
                raise
    raise VersionMismatch("The document kept changing; try again")
