"""Data sources and destinations as one kind of workspace resource each, with their secret fields."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter

from models import data_source, destination
from models.collections import DATA_SOURCES, DESTINATIONS
from models.documents import Document
from models.errors import NotFound
from models.secrets import SecretBox, SecretLayout, masked_fields, opened_fields, seal_fields, secret_values
from models.workspace_store import WorkspaceStore


class DataSourceNotFound(NotFound):
    """No such data source in this workspace."""


class DestinationNotFound(NotFound):
    """No such destination in this workspace."""


@dataclass(frozen=True)
class ResourceKind:
    label: str
    path: str
    collection: str
    spec: TypeAdapter
    view: type[Document]
    not_found: type[NotFound]
    secret_layouts: Mapping[str, SecretLayout]
    # The SyncJob field that refers to a resource of this kind.
    job_field: str
    # Fields the API shows that no document stores (a destination's effective database).
    derived: Callable[[dict], dict] = field(default=lambda doc: {})

    def store(self, db) -> WorkspaceStore:
        store = WorkspaceStore(db[self.collection])
        store.not_found = self.not_found
        return store

    def seal(self, fields: dict[str, Any], box: SecretBox, previous: dict | None = None) -> dict[str, Any]:
        return seal_fields(fields, self.secret_layouts[fields["type"]], box, previous)

    def masked(self, doc: dict[str, Any], box: SecretBox) -> dict[str, Any]:
        return masked_fields(doc, self.secret_layouts[doc["type"]], box)

    def shown(self, doc: dict[str, Any], box: SecretBox) -> dict[str, Any]:
        """What the API shows of a document: secrets masked, derived fields added."""
        return {**self.masked(doc, box), **self.derived(doc)}

    def opened(self, doc: dict[str, Any], box: SecretBox) -> dict[str, Any]:
        return opened_fields(doc, self.secret_layouts[doc["type"]], box)

    def secret_values(self, opened: dict[str, Any]) -> list[str]:
        """The clear-text secrets of an opened document: what a run's logs must never show."""
        return secret_values(opened, self.secret_layouts[opened["type"]])


DATA_SOURCE = ResourceKind(
    label="data source",
    path="data-sources",
    collection=DATA_SOURCES,
    spec=data_source.DATA_SOURCE_SPEC,
    view=data_source.DataSourceView,
    not_found=DataSourceNotFound,
    secret_layouts=data_source.SECRET_LAYOUTS,
    job_field="dataSourceId",
)

DESTINATION = ResourceKind(
    label="destination",
    path="destinations",
    collection=DESTINATIONS,
    spec=destination.DESTINATION_SPEC,
    view=destination.DestinationView,
    not_found=DestinationNotFound,
    secret_layouts=destination.SECRET_LAYOUTS,
    job_field="destinationDatabaseId",
    derived=lambda doc: {"effectiveDatabase": destination.effective_database(doc["workspaceId"], doc)},
)
