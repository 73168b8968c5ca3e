"""API tokens: shown once, stored only as a SHA-256 hash, each with a role in one workspace, or admin.

Roles, each allowing what the one before allows: `viewer` reads; `operator` also runs, cancels, enables
and disables jobs; `editor` also writes jobs, data sources and destinations; `owner` also manages the
workspace's tokens. An `admin` token is valid for every workspace and for /api/admin.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bson import ObjectId
from pydantic import Field, model_validator

from models.collections import API_TOKENS
from models.documents import Document, IdText
from models.errors import NotFound

TOKEN_PREFIX = "sjt_"
# lastUsedAt is a hint for operators, not an audit log: one write a minute per token is plenty.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    EDITOR = "editor"
    OWNER = "owner"


ADMIN = "admin"
RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.EDITOR: 2, Role.OWNER: 3, ADMIN: 4}


class TokenNotFound(NotFound):
    """No such token in this workspace."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def role_of(doc: dict[str, Any]) -> str:
    """The role a stored token has. Only `admin: true` makes an admin: a workspace token whose `role` says
    "admin" (or anything unknown) is a viewer, so a planted document grants nothing."""
    if doc.get("admin"):
        return ADMIN
    role = doc.get("role")
    if role is None:
        # Tokens stored before roles existed could do everything in their workspace: they stay owners.
        return Role.OWNER.value
    return role if role in Role._value2member_map_ else Role.VIEWER.value


@dataclass(frozen=True)
class Grant:
    """What a presented token allows. `role` is one of Role or "admin"; `token_id` is None for the
    bootstrap token, which is configured, not stored."""

    token_id: ObjectId | None
    name: str
    workspace_id: str | None
    admin: bool
    role: str

    def allows(self, workspace_id: str) -> bool:
        return self.admin or self.workspace_id == workspace_id

    def at_least(self, role: str) -> bool:
        return RANK[self.role] >= RANK[role]


class TokenView(Document):
    id: IdText = Field(alias="_id", serialization_alias="id")
    workspace_id: str | None
    name: str
    admin: bool
    role: str = Field(description="viewer, operator, editor, owner, or admin.")
    prefix: str = Field(description="The first characters of the token, to tell tokens apart.")
    created_at: datetime
    last_used_at: datetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _role_of_older_tokens(cls, doc: Any) -> Any:
        if isinstance(doc, dict) and "role" not in doc:
            return {**doc, "role": role_of(doc)}
        return doc


class TokenStore:
    """Tokens in `api_tokens`, plus the bootstrap token: valid while SYNCJOBS_BOOTSTRAP_TOKEN names it,
    never stored, so unsetting the variable and restarting ends it."""

    def __init__(self, db, *, bootstrap: str | None = None):
        self._tokens = db[API_TOKENS]
        self._bootstrap_hash = hash_token(bootstrap) if bootstrap else None

    async def issue(
        self,
        *,
        workspace_id: str | None,
        name: str,
        now: datetime,
        admin: bool = False,
        role: Role = Role.VIEWER,
    ) -> tuple[str, dict[str, Any]]:
        """A new token and its document; the token text exists only in the return value."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        doc = {
            "_id": ObjectId(),
            "workspaceId": None if admin else workspace_id,
            "admin": admin,
            "role": ADMIN if admin else Role(role).value,
            "name": name,
            "tokenHash": hash_token(token),
            "prefix": token[: len(TOKEN_PREFIX) + 6],
            "createdAt": now,
            "lastUsedAt": None,
        }
        await self._tokens.insert_one(doc)
        return token, doc

    async def forget_stored_bootstrap(self) -> int:
        """Delete the bootstrap tokens earlier versions stored (a prefix ending in "…"): the bootstrap
        token is no longer kept, so one left from before must not outlive its variable."""
        result = await self._tokens.delete_many(
            {"admin": True, "name": "bootstrap", "prefix": {"$regex": "…$"}}
        )
        return result.deleted_count

    async def authenticate(self, token: str, now: datetime) -> Grant | None:
        digest = hash_token(token)
        if self._bootstrap_hash is not None and hmac.compare_digest(digest, self._bootstrap_hash):
            return Grant(token_id=None, name="bootstrap", workspace_id=None, admin=True, role=ADMIN)
        doc = await self._tokens.find_one({"tokenHash": digest})
        # The lookup is by hash, so timing reveals nothing of the token; still compare in constant time.
        if doc is None or not hmac.compare_digest(doc["tokenHash"], digest):
            return None
        last_used = doc.get("lastUsedAt")
        if last_used is None or now - last_used >= LAST_USED_RESOLUTION:
            await self._tokens.update_one({"_id": doc["_id"]}, {"$set": {"lastUsedAt": now}})
        return Grant(
            token_id=doc["_id"],
            name=doc.get("name", ""),
            workspace_id=doc.get("workspaceId"),
            admin=bool(doc.get("admin")),
            role=role_of(doc),
        )

    async def count(self, workspace_id: str) -> int:
        return await self._tokens.count_documents({"workspaceId": workspace_id})

    async def list(self, workspace_id: str | None) -> list[dict[str, Any]]:
        """A workspace's tokens; with None, the admin tokens."""
        return await self._tokens.find(_scope(workspace_id)).sort("_id", 1).to_list(None)

    async def get(self, workspace_id: str | None, token_id: ObjectId) -> dict[str, Any]:
        doc = await self._tokens.find_one({"_id": token_id, **_scope(workspace_id)})
        if doc is None:
            raise TokenNotFound(details={"id": str(token_id)})
        return doc

    async def revoke(self, workspace_id: str | None, token_id: ObjectId) -> None:
        """Revoke a workspace's token; with None, an admin token."""
        result = await self._tokens.delete_one({"_id": token_id, **_scope(workspace_id)})
        if result.deleted_count == 0:
            raise TokenNotFound(details={"id": str(token_id)})


def _scope(workspace_id: str | None) -> dict[str, Any]:
    """A workspace's tokens; with None, the admin tokens (which belong to no workspace)."""
    return {"workspaceId": workspace_id} if workspace_id is not None else {"admin": True}
