"""API tokens: shown once, stored only as a SHA-256 hash, valid for one workspace or (admin) for all."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId
from pydantic import Field
from pymongo.errors import DuplicateKeyError

from models.collections import API_TOKENS
from models.documents import Document, IdText
from models.errors import NotFound

TOKEN_PREFIX = "sjt_"
# lastUsedAt is a hint for operators, not an audit log: one write a minute per token is plenty.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenNotFound(NotFound):
    """No such token in this workspace."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Grant:
    """What a presented token allows."""

    token_id: ObjectId
    workspace_id: str | None
    admin: bool

    def allows(self, workspace_id: str) -> bool:
        return self.admin or self.workspace_id == workspace_id


class TokenView(Document):
    id: IdText = Field(alias="_id", serialization_alias="id")
    workspace_id: str | None
    name: str
    admin: bool
    prefix: str = Field(description="The first characters of the token, to tell tokens apart.")
    created_at: datetime
    last_used_at: datetime | None = None


class TokenStore:
    def __init__(self, db):
        self._tokens = db[API_TOKENS]

    async def issue(
        self, *, workspace_id: str | None, name: str, now: datetime, admin: bool = False
    ) -> tuple[str, dict[str, Any]]:
        """A new token and its document; the token text exists only in the return value."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        doc = {
            "_id": ObjectId(),
            "workspaceId": None if admin else workspace_id,
            "admin": admin,
            "name": name,
            "tokenHash": hash_token(token),
            "prefix": token[: len(TOKEN_PREFIX) + 6],
            "createdAt": now,
            "lastUsedAt": None,
        }
        await self._tokens.insert_one(doc)
        return token, doc

    async def install(self, token: str, *, name: str, now: datetime) -> None:
        """Make a token chosen outside (SYNCJOBS_BOOTSTRAP_TOKEN) a valid admin token."""
        digest = hash_token(token)
        try:
            await self._tokens.update_one(
                {"tokenHash": digest},
                {
                    "$setOnInsert": {
                        "workspaceId": None,
                        "admin": True,
                        "name": name,
                        "prefix": token[:4] + "…",
                        "createdAt": now,
                        "lastUsedAt": None,
                    }
                },
                upsert=True,
            )
        except DuplicateKeyError:
            pass  # another process installed it at the same moment

    async def authenticate(self, token: str, now: datetime) -> Grant | None:
        digest = hash_token(token)
        doc = await self._tokens.find_one({"tokenHash": digest})
        # The lookup is by hash, so timing reveals nothing of the token; still compare in constant time.
        if doc is None or not hmac.compare_digest(doc["tokenHash"], digest):
            return None
        last_used = doc.get("lastUsedAt")
        if last_used is None or now - last_used >= LAST_USED_RESOLUTION:
            await self._tokens.update_one({"_id": doc["_id"]}, {"$set": {"lastUsedAt": now}})
        return Grant(token_id=doc["_id"], workspace_id=doc.get("workspaceId"), admin=bool(doc.get("admin")))

    async def list(self, workspace_id: str) -> list[dict[str, Any]]:
        return await self._tokens.find({"workspaceId": workspace_id}).sort("_id", 1).to_list(None)

    async def revoke(self, workspace_id: str, token_id: ObjectId) -> None:
        result = await self._tokens.delete_one({"_id": token_id, "workspaceId": workspace_id})
        if result.deleted_count == 0:
            raise TokenNotFound(details={"id": str(token_id)})
