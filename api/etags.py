"""Optimistic concurrency: an ETag from the document's version, checked through If-Match."""

import re

from aiohttp import web

from models.errors import VersionMismatch

# ASCII digits only (str.isdigit also takes "²"), and few enough that int() never refuses them.
VERSION_TAG = re.compile(r"[0-9]{1,18}")


def etag(version: int) -> str:
    return f'"{version}"'


def expected_version(request: web.Request) -> int | None:
    """The version If-Match names; None when any version will do."""
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    tag = header.strip().removeprefix("W/").strip('"')
    if not VERSION_TAG.fullmatch(tag):
        raise VersionMismatch("If-Match names no version of this resource", details={"ifMatch": header})
    return int(tag)


def check_version(current: dict, wanted: int | None) -> None:
    """412 unless the document is at the version If-Match named (or If-Match named none)."""
    if wanted is not None and current["version"] != wanted:
        raise VersionMismatch(details={"expectedVersion": wanted, "version": current["version"]})
