"""Data sources and destinations as one kind of workspace resource each, with their secret fields."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter

from models import data_source, destination
from models.collections import DATA_SOURCES, DESTINATIONS
from models.documents import Document
from models.errors import NotFound
from models.secrets import SecretBox, masked_fields, opened_fields, seal_fields
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
    secret_maps: Mapping[str, tuple[str, ...]]
    secret_urls: Mapping[str, tuple[str, ...]]
    # The SyncJob field that refers to a resource of this kind.
    job_field: str

    def store(self, db) -> WorkspaceStore:
        store = WorkspaceStore(db[self.collection])
        store.not_found = self.not_found
        return store

    def seal(self, fields: dict[str, Any], box: SecretBox, previous: dict | None = None) -> dict[str, Any]:
        kind = fields["type"]
        return seal_fields(
            fields, maps=self.secret_maps[kind], urls=self.secret_urls[kind], box=box, previous=previous
        )

    def masked(self, doc: dict[str, Any], box: SecretBox) -> dict[str, Any]:
        kind = doc["type"]
        return masked_fields(doc, maps=self.secret_maps[kind], urls=self.secret_urls[kind], box=box)

    def opened(self, doc: dict[str, Any], box: SecretBox) -> dict[str, Any]:
        kind = doc["type"]
        return opened_fields(doc, maps=self.secret_maps[kind], urls=self.secret_urls[kind], box=box)


DATA_SOURCE = ResourceKind(
    label="data source",
    path="data-sources",
    collection=DATA_SOURCES,
    spec=data_source.DATA_SOURCE_SPEC,
    view=data_source.DataSourceView,
    not_found=DataSourceNotFound,
    secret_maps=data_source.SECRET_MAPS,
    secret_urls=data_source.SECRET_URLS,
    job_field="dataSourceId",
)

DESTINATION = ResourceKind(
    label="destination",
    path="destinations",
    collection=DESTINATIONS,
    spec=destination.DESTINATION_SPEC,
    view=destination.DestinationView,
    not_found=DestinationNotFound,
    secret_maps=destination.SECRET_MAPS,
    secret_urls=destination.SECRET_URLS,
    job_field="destinationDatabaseId",
)
