"""SyncJob documents, always read and written within one workspace."""

from datetime import datetime
from typing import Any

from pymongo import ReturnDocument

from models.collections import SYNC_JOBS
from models.errors import SyncJobNotFound
from models.job_changes import JobChangeMark
from models.sync_job import SyncJobSpec, new_job_document
from models.workspace_store import WorkspaceStore


class SyncJobStore(WorkspaceStore):
    not_found = SyncJobNotFound

    def __init__(self, db):
        super().__init__(db[SYNC_JOBS])
        self._changes = JobChangeMark(db)

    async def create(self, workspace_id: str, spec: SyncJobSpec, now: datetime) -> dict[str, Any]:
        doc = new_job_document(workspace_id, spec, now)
        doc["_id"] = (await self.collection.insert_one(doc)).inserted_id
        await self.edited(now)
        return doc

    async def edited(self, now: datetime) -> None:
        """Tell a polling worker that there is an edit to read (models/job_changes.py)."""
        await self._changes.bump(now)

    async def reset_cursors(self, workspace_id: str, job_id, entity: str | None) -> dict[str, Any]:
        """Forget the saved incremental position of one entity, or of all; not a user edit of the job's
        spec, so neither version nor updatedAt moves (the worker need not reload it)."""
        change: dict[str, Any] = (
            {"$unset": {f"cursors.{entity}": ""}} if entity else {"$set": {"cursors": {}}}
        )
        doc = await self.collection.find_one_and_update(
            {"_id": job_id, "workspaceId": workspace_id}, change, return_document=ReturnDocument.AFTER
        )
        if doc is None:
            raise SyncJobNotFound(details={"id": str(job_id)})
        return doc

    async def using(self, workspace_id: str, field: str, resource_id: str) -> list[str]:
        """Ids of the jobs whose `field` names `resource_id`."""
        docs = await self.collection.find(
            {"workspaceId": workspace_id, field: resource_id}, {"_id": 1}
        ).to_list(None)
        return [str(doc["_id"]) for doc in docs]
