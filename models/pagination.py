"""Opaque, stable cursors over (sort key, _id) pairs."""

import base64
import json
from datetime import datetime
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId

from models.errors import ValidationFailed

MAX_LIMIT = 200
DEFAULT_LIMIT = 50


def encode_cursor(doc: dict[str, Any], key: str | None = None) -> str:
    payload = {"id": str(doc["_id"])}
    if key:
        payload["k"] = doc[key].isoformat()
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def decode_cursor(text: str, key: str | None = None) -> tuple[ObjectId, datetime | None]:
    try:
        payload = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        return ObjectId(payload["id"]), datetime.fromisoformat(payload["k"]) if key else None
    except (ValueError, KeyError, TypeError, InvalidId) as exc:
        raise ValidationFailed(
            "Invalid cursor", details=[{"field": "cursor", "message": "not a cursor this API returned"}]
        ) from exc


def parse_limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(
            "Invalid limit", details=[{"field": "limit", "message": f"an integer from 1 to {MAX_LIMIT}"}]
        )
    return limit


def after_ascending(cursor: str | None) -> dict[str, Any]:
    """The filter for the page after `cursor` in ascending _id order."""
    if not cursor:
        return {}
    last_id, _ = decode_cursor(cursor)
    return {"_id": {"$gt": last_id}}


def after_descending(cursor: str | None, key: str) -> dict[str, Any]:
    """The filter for the page after `cursor` in descending (key, _id) order."""
    if not cursor:
        return {}
    last_id, last_key = decode_cursor(cursor, key)
    return {"$or": [{key: {"$lt": last_key}}, {key: last_key, "_id": {"$lt": last_id}}]}


def page(
    docs: list[dict[str, Any]], limit: int, key: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """The first `limit` documents and the cursor of the next page; fetch limit + 1 to call this."""
    if len(docs) > limit:
        return docs[:limit], encode_cursor(docs[limit - 1], key)
    return docs, None
