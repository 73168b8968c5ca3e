"""Pausing the scheduler, everywhere or for one workspace: documents in `scheduler_control` that the API
writes. What they stop is the queue: a pause ends its scope's queued runs, and every write that queues a run
reads them right after (models.execution_store), so workers launch without reading them."""

from datetime import datetime
from typing import Any

from models.collections import SCHEDULER_CONTROL
from models.errors import Conflict

GLOBAL_ID = "global"
PAUSED_REASON = "paused"


def workspace_control_id(workspace_id: str) -> str:
    return f"workspace:{workspace_id}"


class Paused(Conflict):
    """The scheduler is paused; nothing runs until it is resumed."""

    code = "paused"


class SchedulerControl:
    def __init__(self, db):
        self._control = db[SCHEDULER_CONTROL]

    async def set_paused(
        self, paused: bool, *, now: datetime, by: str, workspace_id: str | None = None
    ) -> dict[str, Any]:
        """Pause or resume the whole scheduler (no workspace) or one workspace; returns the document."""
        doc_id = GLOBAL_ID if workspace_id is None else workspace_control_id(workspace_id)
        fields = {
            "scope": "scheduler" if workspace_id is None else "workspace",
            "workspaceId": workspace_id,
            "paused": paused,
            "changedAt": now,
            "changedBy": by,
        }
        await self._control.update_one({"_id": doc_id}, {"$set": fields}, upsert=True)
        return {"_id": doc_id, **fields}

    async def paused_by(self, workspace_id: str) -> str | None:
        """Why nothing of this workspace may run now: "scheduler", "workspace", or None when it may."""
        docs = await self._control.find(
            {"_id": {"$in": [GLOBAL_ID, workspace_control_id(workspace_id)]}, "paused": True}, {"_id": 1}
        ).to_list(None)
        return paused_scope(frozenset(doc["_id"] for doc in docs), workspace_id)

    async def paused_ids(self) -> frozenset[str]:
        """The ids of every pause in force (a handful: the global one and paused workspaces)."""
        docs = await self._control.find({"paused": True}, {"_id": 1}).to_list(None)
        return frozenset(doc["_id"] for doc in docs)

    async def globally_paused(self) -> bool:
        return await self._control.count_documents({"_id": GLOBAL_ID, "paused": True}) > 0

    async def refuse_if_paused(self, workspace_id: str) -> None:
        """Raise Paused (409) when a run of this workspace may not start now."""
        scope = await self.paused_by(workspace_id)
        if scope is not None:
            raise Paused(details={"pausedBy": scope, "workspaceId": workspace_id})


def paused_scope(paused_ids: frozenset[str], workspace_id: str) -> str | None:
    """ "scheduler" when everything is paused, "workspace" when this workspace is, else None."""
    if GLOBAL_ID in paused_ids:
        return "scheduler"
    if workspace_control_id(workspace_id) in paused_ids:
        return "workspace"
    return None
