"""Data sources: where a sync reads from. `http` is the built-in connector; `command` runs any executable."""

from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, field_validator

from models.documents import CamelModel, Name, ResourceView

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
    name: Name
    path: Annotated[str, Field(min_length=1, max_length=2000, description="Endpoint path under baseUrl.")]
    records_path: DottedPath = ""
    primary_key: Annotated[str, Field(min_length=1, max_length=200)] = "id"
    params: dict[str, str] = {}
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
    headers: Annotated[dict[str, str], Field(description="Sent with every request; values are secret.")] = {}
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
    argv: Annotated[
        list[Annotated[str, Field(min_length=1, pattern=r"^[^\x00]+$")]],
        Field(min_length=1, max_length=100, description="The executable and its arguments; no shell."),
    ]
    env: Annotated[dict[str, str], Field(description="Extra environment variables; values are secret.")] = {}
    primary_key: str = "id"


DataSourceSpec = Annotated[HttpSource | CommandSource, Field(discriminator="type")]
DATA_SOURCE_SPEC = TypeAdapter(DataSourceSpec)

# The fields whose values are sealed at rest: dict fields seal each value, string fields seal when they
# carry credentials.
SECRET_MAPS = {"http": ("headers",), "command": ("env",)}
SECRET_URLS = {"http": ("baseUrl",), "command": ()}


class DataSourceView(ResourceView):
    base_url: str | None = None
    headers: dict[str, str] | None = None
    pagination: dict[str, Any] | None = None
    entities: list[dict[str, Any]] | None = None
    request_timeout_seconds: float | None = None
    max_retries: int | None = None
    argv: list[str] | None = None
    env: dict[str, str] | None = None
    primary_key: str | None = None
