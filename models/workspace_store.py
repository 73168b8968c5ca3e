"""Workspace-owned, versioned documents: the shape shared by jobs, sources and destinations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument

from models.errors import NotFound, VersionMismatch
from models.pagination import after_ascending, page


def own_copy(projection: dict[str, int] | None) -> dict[str, int] | None:
    # The in-memory double writes `_id` into the projection it is handed: a shared constant must not change.
    return dict(projection) if projection is not None else None


class WorkspaceStore:
    """Every query carries the workspace id, so no caller can reach another workspace's document."""

    not_found: type[NotFound] = NotFound

    def __init__(self, collection):
        self.collection = collection

    async def list(
        self,
        workspace_id: str,
        *,
        limit: int,
        cursor: str | None,
        projection: dict[str, int] | None = None,
    ) -> tuple[list[dict], str | None]:
        query = {"workspaceId": workspace_id, **after_ascending(cursor)}
        docs = (
            await self.collection.find(query, own_copy(projection))
            .sort("_id", 1)
            .limit(limit + 1)
            .to_list(None)
        )
        return page(docs, limit)

    async def get(
        self, workspace_id: str, doc_id: ObjectId, projection: dict[str, int] | None = None
    ) -> dict[str, Any]:
        """The document, with only the fields `projection` keeps (None: all of them)."""
        doc = await self.collection.find_one(
            {"_id": doc_id, "workspaceId": workspace_id}, own_copy(projection)
        )
        if doc is None:
            raise self.not_found(details={"id": str(doc_id)})
        return doc

    async def find(self, workspace_id: str, doc_id: str, projection: dict[str, int]) -> dict[str, Any] | None:
        """The named fields of the document with this id (given as text), or None."""
        if not ObjectId.is_valid(doc_id):
            return None
        return await self.collection.find_one(
            {"_id": ObjectId(doc_id), "workspaceId": workspace_id}, projection
        )

    async def exists(self, workspace_id: str, doc_id: str) -> bool:
        if not ObjectId.is_valid(doc_id):
            return False
        return (
            await self.collection.count_documents({"_id": ObjectId(doc_id), "workspaceId": workspace_id}) > 0
        )

    async def count(self, workspace_id: str) -> int:
        return await self.collection.count_documents({"workspaceId": workspace_id})

    async def insert(self, workspace_id: str, fields: dict[str, Any], now: datetime) -> dict[str, Any]:
        doc = {"workspaceId": workspace_id, **fields, "createdAt": now, "updatedAt": now, "version": 1}
        doc["_id"] = (await self.collection.insert_one(doc)).inserted_id
        return doc

    async def update(
        self,
        workspace_id: str,
        doc_id: ObjectId,
        changes: dict[str, Any],
        now: datetime,
        *,
        expected_version: int | None,
    ) -> dict[str, Any]:
        """A user's change: bumps version and updatedAt (for jobs, what makes the worker reload)."""
        query: dict[str, Any] = {"_id": doc_id, "workspaceId": workspace_id}
        if expected_version is not None:
            query["version"] = expected_version
        doc = await self.collection.find_one_and_update(
            query,
            {"$set": {**changes, "updatedAt": now}, "$inc": {"version": 1}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            await self._raise_mismatch(workspace_id, doc_id, expected_version)
        await self.edited(now)
        return doc

    async def edited(self, now: datetime) -> None:
        """Called after each successful edit; a store whose edits someone follows says so here."""

    async def delete(self, workspace_id: str, doc_id: ObjectId, *, expected_version: int | None) -> None:
        query: dict[str, Any] = {"_id": doc_id, "workspaceId": workspace_id}
        if expected_version is not None:
            query["version"] = expected_version
        result = await self.collection.delete_one(query)
        if result.deleted_count == 0:
            await self._raise_mismatch(workspace_id, doc_id, expected_version)

    async def _raise_mismatch(self, workspace_id: str, doc_id: ObjectId, expected_version: int | None):
        current = await self.get(workspace_id, doc_id)  # raises not_found when it is gone
        raise VersionMismatch(details={"expectedVersion": expected_version, "version": current["version"]})
