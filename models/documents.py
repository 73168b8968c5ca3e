"""Conventions shared by every document and JSON body: camelCase names, ObjectId ids."""

from datetime import datetime
from typing import Annotated, Any

from bson import ObjectId
from bson.errors import InvalidId
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema
from pydantic.alias_generators import to_camel

from models.errors import NotFound


def _object_id_text(value: Any) -> str:
    if isinstance(value, ObjectId):
        return str(value)
    return value


# An ObjectId shown to the world as its 24-character hex string.
IdText = Annotated[
    str,
    BeforeValidator(_object_id_text),
    PlainSerializer(str),
    WithJsonSchema({"type": "string", "pattern": "^[0-9a-f]{24}$"}),
]


# A name people read in lists, logs and terminals: no control characters (NUL, newlines, escapes).
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f-\x9f]+$")]


# Fields the service keeps on every workspace document; a body that names one is refused.
# effectiveDatabase: a destination's derived database name, shown by GET and so sent back by PUT.
READ_ONLY_FIELDS = frozenset(
    {"id", "_id", "workspaceId", "version", "createdAt", "updatedAt", "effectiveDatabase"}
)


class CamelModel(BaseModel):
    """A JSON body or document: camelCase on the wire and in MongoDB, snake_case in Python. Strict: `false`
    is no integer and `1` no boolean (enum fields opt out, since JSON gives them strings)."""

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", validate_by_name=False, strict=True)


class Document(CamelModel):
    """Read from MongoDB for output: fields we do not show are dropped, not refused. Built in Python by field
    name too (`StoredRetryPolicy(max_attempts=4)`): with extra="ignore" a name the model did not take would
    be dropped without a word, leaving the default. (`populate_by_name` alone does not override the parent's
    `validate_by_name=False`.)"""

    model_config = ConfigDict(
        alias_generator=to_camel, extra="ignore", validate_by_name=True, validate_by_alias=True, strict=False
    )


def parse_object_id(text: str, error: type[NotFound]) -> ObjectId:
    """The ObjectId named in a URL; a malformed one names no resource, so it is `error` too."""
    try:
        return ObjectId(text)
    except (InvalidId, TypeError):
        raise error(details={"id": text, "reason": "not a 24-character hex ObjectId"}) from None


class ResourceView(Document):
    """The fields every workspace resource shows."""

    id: IdText = Field(alias="_id", serialization_alias="id")
    workspace_id: str
    name: str
    description: str = ""
    type: str
    version: int
    created_at: datetime
    updated_at: datetime
