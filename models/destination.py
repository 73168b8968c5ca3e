"""Destinations: where a sync writes. Type `mongodb`: one collection per entity, upserts by primary key.

Without `url` the destination writes to the workspace's own database on the service's cluster (see
models/namespaces.py); with `url`, to the named database of that cluster, under the network policy.
"""

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, TypeAdapter, model_validator

from models.documents import CamelModel, ResourceView
from models.namespaces import (
    MAX_WORKSPACE_DATABASE,
    collection_problem,
    database_problem,
    refusing,
    workspace_database,
)
from models.secrets import SecretLayout


def _prefix(prefix: str) -> str:
    # The prefix starts every collection name, so it must not make one MongoDB's own.
    problem = collection_problem(prefix + "x") if prefix else None
    if problem:
        raise ValueError(problem)
    return prefix


class MongoDestination(CamelModel):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=2000)] = ""
    type: Literal["mongodb"]
    url: Annotated[
        str | None,
        Field(
            pattern=r"^mongodb(\+srv)?://",
            max_length=2000,
            description="An external cluster. Unset: the workspace's own database on the service's cluster.",
        ),
    ] = None
    database: Annotated[
        str,
        Field(
            min_length=1,
            max_length=63,
            description=f"Without url: at most {MAX_WORKSPACE_DATABASE} characters, the last part of "
            "the workspace's own database (effectiveDatabase).",
        ),
        AfterValidator(refusing(database_problem)),
    ]
    collection_prefix: Annotated[
        str, Field(max_length=60, pattern=r"^[A-Za-z0-9_.-]*$"), AfterValidator(_prefix)
    ] = ""
    batch_size: Annotated[int, Field(ge=1, le=10_000)] = 500

    @model_validator(mode="after")
    def _fits_the_workspace_namespace(self) -> "MongoDestination":
        if self.url is None and len(self.database.encode()) > MAX_WORKSPACE_DATABASE:
            raise ValueError(
                f"database: at most {MAX_WORKSPACE_DATABASE} bytes on the service's cluster "
                "(the workspace's own prefix takes the rest)"
            )
        return self


DestinationSpec = Annotated[MongoDestination, Field(discriminator="type")]
DESTINATION_SPEC = TypeAdapter(DestinationSpec)
SECRET_LAYOUTS = {"mongodb": SecretLayout(urls=("url",))}


def effective_database(workspace_id: str, destination: dict) -> str:
    """The database a destination writes to: its own name on an external cluster, else the workspace's."""
    if destination.get("url"):
        return destination["database"]
    return workspace_database(workspace_id, destination["database"])


class DestinationView(ResourceView):
    url: str | None = None
    database: str
    effective_database: str = Field(
        description="The database the records land in: without url, the workspace's own on the "
        "service's cluster (sj_<workspace>_<hash>_<database>)."
    )
    collection_prefix: str = ""
    batch_size: int = 500
