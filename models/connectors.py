"""Connectors: the programs a `command` source may run, registered by operators, never by workspaces.

An entry names an executable, its fixed arguments, and the JSON schema of the `config` a workspace may give
(and, optionally, the names of the secrets it takes). Entries come from three places, in this order of
precedence: the built-in HTTP connector (`http`, what `type: http` sources run), the operator's file
(`SYNCJOBS_CONNECTORS_FILE`, JSON or TOML, read once at start-up), and the `connectors` collection written
through the admin routes. A workspace's config and secrets reach the child in its stdin spec, never in argv.
"""

import json
import sys
import tomllib
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import jsonschema
from pydantic import AfterValidator, Field, ValidationError, field_validator
from pymongo.errors import DuplicateKeyError

from models.collections import CONNECTORS
from models.documents import CamelModel, Document
from models.errors import Conflict, NotFound, SyncJobsError, ValidationFailed

HTTP = "http"
ConnectorName = Annotated[
    str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="Lower-case letters, digits, - and _.")
]


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("NUL is not allowed")
    return value


Arg = Annotated[str, Field(max_length=4096), AfterValidator(_no_nul)]


class ConnectorNotFound(NotFound):
    """No such connector."""


class ConnectorsFileInvalid(SyncJobsError):
    """SYNCJOBS_CONNECTORS_FILE cannot be read as a list of connectors."""

    code = "connectors_file_invalid"


class ConnectorSpec(CamelModel):
    """What an operator registers."""

    name: ConnectorName
    description: Annotated[str, Field(max_length=2000)] = ""
    executable: Annotated[Arg, Field(min_length=2, pattern=r"^/", description="An absolute path.")]
    args: Annotated[
        list[Arg], Field(max_length=100, description="Fixed arguments, after the executable.")
    ] = []
    config_schema: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object"},
        description="JSON schema (draft 2020-12) of the config a workspace may give.",
    )
    secret_names: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=200)]],
        Field(max_length=100, description="The secrets a source may give; empty: any."),
    ] = []

    @field_validator("config_schema")
    @classmethod
    def _is_a_json_schema(cls, schema: dict[str, Any]) -> dict[str, Any]:
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as error:
            raise ValueError(f"not a JSON schema: {error.message}") from None
        return schema


class ConnectorView(Document):
    name: str
    description: str = ""
    executable: str
    args: list[str] = []
    config_schema: dict[str, Any] = {}
    secret_names: list[str] = []
    origin: str = Field(description="builtin, file (SYNCJOBS_CONNECTORS_FILE) or api (admin routes).")
    created_at: datetime | None = None


@cache
def builtin_http() -> dict[str, Any]:
    """The HTTP connector of `type: http` sources, run with this very interpreter (callers never change
    the entry: it is built once)."""
    from models.data_source import HttpSource

    return {
        "name": HTTP,
        "description": "The built-in HTTP connector: a JSON API, paged, incremental by a cursor field.",
        "executable": sys.executable,
        "args": ["-m", "syncjobs", "sync"],
        "configSchema": HttpSource.model_json_schema(by_alias=True),
        "secretNames": [],
        "origin": "builtin",
    }


def read_connectors_file(path: str | Path | None) -> list[dict[str, Any]]:
    """The entries of SYNCJOBS_CONNECTORS_FILE: a JSON list, or TOML `[[connectors]]` tables."""
    if not path:
        return []
    path = Path(path)
    try:
        text = path.read_text()
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (OSError, ValueError) as error:
        raise ConnectorsFileInvalid(f"SYNCJOBS_CONNECTORS_FILE {path}: {error}") from None
    entries = data.get("connectors") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise ConnectorsFileInvalid(f"SYNCJOBS_CONNECTORS_FILE {path}: expected a list of connectors")
    connectors: list[dict[str, Any]] = []
    for index, entry in enumerate(entries):
        try:
            spec = ConnectorSpec.model_validate(entry)
        except ValidationError as error:
            raise ConnectorsFileInvalid(f"SYNCJOBS_CONNECTORS_FILE {path}, entry {index}: {error}") from None
        if spec.name == HTTP or spec.name in {c["name"] for c in connectors}:
            raise ConnectorsFileInvalid(f"SYNCJOBS_CONNECTORS_FILE {path}: {spec.name!r} is named twice")
        connectors.append({**spec.model_dump(by_alias=True), "origin": "file"})
    return connectors


def config_problems(connector: dict[str, Any], config: Any, secrets: dict[str, str]) -> list[dict]:
    """What is wrong with a source's config and secrets for `connector`, as {field, message} details."""
    validator = jsonschema.Draft202012Validator(connector.get("configSchema") or {})
    problems = [
        {
            "field": ".".join(["config", *(str(part) for part in error.absolute_path)]),
            # The message names the schema's rule; the rejected value itself stays out of the answer.
            "message": f"does not match the connector's schema ({error.validator})",
        }
        for error in validator.iter_errors(config)
    ]
    allowed = connector.get("secretNames") or []
    problems += [
        {"field": f"secrets.{name}", "message": f"{connector['name']!r} takes no secret of this name"}
        for name in secrets
        if allowed and name not in allowed
    ]
    return problems


class ConnectorCatalog:
    """The connectors this process knows: built-in, from the operator's file, and from the database."""

    def __init__(self, db, configured: list[dict[str, Any]] | None = None, *, recent=None):
        self._collection = db[CONNECTORS]
        fixed = [builtin_http(), *(configured or [])]
        self._fixed = {entry["name"]: entry for entry in fixed}
        # The worker's runs share their reads of a connector for a moment (models.recent_reads); the API
        # reads it afresh.
        self._recent = recent

    @classmethod
    def from_settings(cls, db, settings, *, recent=None) -> "ConnectorCatalog":
        return cls(db, read_connectors_file(settings.syncjobs_connectors_file), recent=recent)

    async def get(self, name: str) -> dict[str, Any]:
        if name in self._fixed:
            return self._fixed[name]
        if self._recent is not None:
            doc = await self._recent.get((CONNECTORS, name), lambda: self._collection.find_one({"_id": name}))
        else:
            doc = await self._collection.find_one({"_id": name})
        if doc is None:
            raise ConnectorNotFound(details={"name": name})
        return {**doc, "name": doc["_id"], "origin": "api"}

    async def list(self) -> list[dict[str, Any]]:
        stored = await self._collection.find().sort("_id", 1).to_list(None)
        return [*self._fixed.values(), *({**doc, "name": doc["_id"], "origin": "api"} for doc in stored)]

    async def create(self, spec: ConnectorSpec, now: datetime) -> dict[str, Any]:
        if spec.name in self._fixed:
            raise Conflict(f"{spec.name!r} is configured outside the API", details={"name": spec.name})
        fields = spec.model_dump(by_alias=True, exclude={"name"})
        try:
            await self._collection.insert_one({"_id": spec.name, **fields, "createdAt": now})
        except DuplicateKeyError:
            raise Conflict("A connector of this name exists", details={"name": spec.name}) from None
        return await self.get(spec.name)

    async def delete(self, name: str) -> None:
        if name in self._fixed:
            raise Conflict(f"{name!r} is configured outside the API", details={"name": name})
        if (await self._collection.delete_one({"_id": name})).deleted_count == 0:
            raise ConnectorNotFound(details={"name": name})

    async def check_source(self, fields: dict[str, Any]) -> None:
        """ValidationFailed unless a command source names a registered connector and gives it config and
        secrets it accepts."""
        name = fields["connector"]
        if name == HTTP:
            raise ValidationFailed(
                "The HTTP connector is used through sources of type http",
                details=[{"field": "connector", "message": "use type http"}],
            )
        try:
            connector = await self.get(name)
        except ConnectorNotFound:
            raise ValidationFailed(
                "No such connector",
                details=[{"field": "connector", "message": f"unknown connector {name!r}"}],
            ) from None
        problems = config_problems(connector, fields.get("config", {}), fields.get("secrets") or {})
        if problems:
            raise ValidationFailed("The config does not suit the connector", details=problems)
