"""Data sources: where a sync reads from. `http` is the built-in connector; `command` runs a connector an
operator registered (models/connectors.py), with the config and secrets the workspace gives it."""

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, TypeAdapter, field_validator

from models.connectors import ConnectorName
from models.documents import CamelModel, Name, ResourceView
from models.namespaces import collection_problem, refusing
from models.network_policy import url_origin
from models.secrets import SecretLayout

CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _no_control(value: str) -> str:
    if CONTROL.search(value):
        raise ValueError("control characters (NUL, newline...) are not allowed")
    return value


def _relative(path: str) -> str:
    # Joined to baseUrl: an absolute URL (or //host) would send the source's secrets elsewhere.
    parts = urlsplit(path)
    if parts.scheme or parts.netloc or path.startswith("//") or "\\" in path:
        raise ValueError("a path under baseUrl, not a URL")
    return _no_control(path)


Key = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_no_control)]
EntityName = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(refusing(collection_problem))]
DottedPath = Annotated[
    str, Field(max_length=200, description="Dotted path into the JSON response; '' is the root.")
]


class Pagination(CamelModel):
    """How the endpoint pages: by page number, by offset, by a cursor in the body, or by Link headers."""

    type: Literal["none", "page", "offset", "cursor", "link"] = "none"
    page_size: Annotated[int, Field(ge=1, le=10_000)] = 100
    size_param: str | None = Field(default="limit", description="Query parameter for the page size.")
    page_param: str = "page"
    first_page: Annotated[int, Field(ge=0, le=2**31)] = 1
    offset_param: str = "offset"
    cursor_param: str = "cursor"
    next_cursor_path: DottedPath = Field(
        default="next_cursor", description="Where the body names the next cursor."
    )


class HttpEntity(CamelModel):
    name: Annotated[EntityName, Field(description="Also the collection its records go to.")]
    path: Annotated[
        str,
        Field(min_length=1, max_length=2000, description="Endpoint path under baseUrl (relative)."),
        AfterValidator(_relative),
    ]
    records_path: DottedPath = ""
    primary_key: Annotated[str, Field(min_length=1, max_length=200)] = "id"
    params: Annotated[
        dict[Key, str],
        Field(description="Query parameters; values are secret (8+ characters). Plain ones go in path."),
    ] = {}
    cursor_field: str | None = Field(
        default=None, description="Incremental mode: records whose field is past the saved cursor are new."
    )
    cursor_param: str | None = Field(
        default=None,
        description="Incremental mode: query parameter that carries the saved cursor to the API.",
    )
    pagination: Pagination | None = Field(default=None, description="Overrides the source's pagination.")


class HttpSource(CamelModel):
    name: Name
    description: Annotated[str, Field(max_length=2000)] = ""
    type: Literal["http"]
    base_url: Annotated[str, Field(pattern=r"^https?://", max_length=2000)]
    headers: Annotated[
        dict[Key, str], Field(description="Sent with every request; values are secret (8+ characters).")
    ] = {}
    pagination: Pagination = Pagination()
    entities: Annotated[list[HttpEntity], Field(min_length=1, max_length=500)]
    request_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 30
    max_retries: Annotated[int, Field(ge=0, le=20)] = 5

    @field_validator("entities")
    @classmethod
    def _names_unique(cls, entities: list[HttpEntity]) -> list[HttpEntity]:
        names = [entity.name for entity in entities]
        if len(set(names)) != len(names):
            raise ValueError("entity names must be unique")
        return entities


class CommandSource(CamelModel):
    name: Name
    description: Annotated[str, Field(max_length=2000)] = ""
    type: Literal["command"]
    connector: Annotated[ConnectorName, Field(description="A connector an operator registered.")]
    config: Annotated[
        dict[str, Any], Field(description="Checked against the connector's schema; reaches it on stdin.")
    ] = {}
    secrets: Annotated[
        dict[Key, str], Field(description="Reach the connector on stdin; secret (8+ characters).")
    ] = {}
    primary_key: str = "id"


DataSourceSpec = Annotated[HttpSource | CommandSource, Field(discriminator="type")]
DATA_SOURCE_SPEC = TypeAdapter(DataSourceSpec)


# Where the secrets of each type are; changing the target (the API's origin, the connector) while sending
# "***" back is refused, so a stored secret never follows a source to a new host or program.
SECRET_LAYOUTS = {
    "http": SecretLayout(
        maps=("headers",),
        entity_maps=("params",),
        urls=("baseUrl",),
        target=lambda doc: url_origin(doc.get("baseUrl") or ""),
    ),
    "command": SecretLayout(maps=("secrets",), target=lambda doc: doc.get("connector")),
}


class DataSourceView(ResourceView):
    base_url: str | None = None
    headers: dict[str, str] | None = None
    pagination: dict[str, Any] | None = None
    entities: list[dict[str, Any]] | None = None
    request_timeout_seconds: float | None = None
    max_retries: int | None = None
    connector: str | None = None
    config: dict[str, Any] | None = None
    secrets: dict[str, str] | None = None
    primary_key: str | None = None
