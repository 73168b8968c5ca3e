"""Which program a source runs: a connector of the catalog, never an argv a workspace wrote."""

from typing import Any

from models.connectors import HTTP, ConnectorCatalog, ConnectorNotFound, config_problems


class SourceRefused(Exception):
    """The source names no program it may run."""


async def source_command(source: dict[str, Any], catalog: ConnectorCatalog) -> list[str]:
    """The argv of a source's connector: `http` for http sources, the named connector for command sources.
    The config is checked again here, so a document edited by hand runs no better than one sent to the API."""
    if source["type"] == "http":
        connector = await catalog.get(HTTP)
    else:
        name = source.get("connector")
        if not name or source.get("argv"):
            raise SourceRefused(
                "command sources no longer run an argv of their own: an operator registers the program as "
                "a connector, and the source names it (README: Connectors)"
            )
        try:
            connector = await catalog.get(name)
        except ConnectorNotFound:
            raise SourceRefused(f"the connector {name!r} is not registered") from None
        if name == HTTP or config_problems(connector, source.get("config", {}), source.get("secrets") or {}):
            raise SourceRefused(f"the source's config does not suit the connector {name!r}")
    return [connector["executable"], *connector.get("args", [])]
