"""Read-only fields in a write: what GET showed may be sent back unchanged; a changed value is refused."""

from collections.abc import Iterable
from typing import Any

from models.errors import ValidationFailed


def without_read_only(
    body: dict[str, Any], shown: dict[str, Any], read_only: Iterable[str]
) -> dict[str, Any]:
    """The body without its read-only fields, each of which must equal its value in `shown` (the resource as
    GET shows it); one that differs is refused with a `read_only` detail."""
    named = set(read_only) & set(body)
    differing = sorted(field for field in named if field not in shown or body[field] != shown[field])
    if differing:
        raise ValidationFailed(
            "Read-only fields cannot be changed",
            details=[
                {"field": field, "code": "read_only", "message": "read-only: differs from the stored value"}
                for field in differing
            ],
        )
    return {key: value for key, value in body.items() if key not in named}
