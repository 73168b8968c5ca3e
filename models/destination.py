"""Destinations: where a sync writes. Type `mongodb`: one collection per entity, upserts by primary key."""

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from models.documents import CamelModel, ResourceView


class MongoDestination(CamelModel):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=2000)] = ""
    type: Literal["mongodb"]
    url: Annotated[
        str | None,
        Field(
            pattern=r"^mongodb(\+srv)?://", max_length=2000, description="Unset: the service's own MongoDB."
        ),
    ] = None
    database: Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[^/\\. \"$*<>:|?]+$")]
    collection_prefix: Annotated[str, Field(max_length=60, pattern=r"^[A-Za-z0-9_.-]*$")] = ""
    batch_size: Annotated[int, Field(ge=1, le=10_000)] = 500


DestinationSpec = Annotated[MongoDestination, Field(discriminator="type")]
DESTINATION_SPEC = TypeAdapter(DestinationSpec)
SECRET_MAPS: dict[str, tuple[str, ...]] = {"mongodb": ()}
SECRET_URLS = {"mongodb": ("url",)}


class DestinationView(ResourceView):
    url: str | None = None
    database: str
    collection_prefix: str = ""
    batch_size: int = 500
