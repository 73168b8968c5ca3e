"""Where a workspace may write on the service's cluster: database and collection names.

A destination without `url` writes to the workspace's own database on the service's cluster:

    sj_<slug>_<hash>_<database>

`slug` is the workspace id lower-cased with every character outside [a-z0-9-] replaced by "-" and cut to
16 characters (so a name stays readable in the mongo shell), `hash` the first 8 hex digits of the SHA-256 of
the workspace id (so two workspaces whose slugs agree still differ), `database` the destination's own
`database` field. The slug has no "_", so the name reads back unambiguously. Nothing in a document names
the database: it is derived where the write happens, so a hand-edited document cannot point elsewhere.
"""

import hashlib
import re
from collections.abc import Callable

PREFIX = "sj_"
SLUG_CHARS = 16
HASH_CHARS = 8
# MongoDB refuses database names of 64 bytes and more.
MAX_DATABASE_BYTES = 63
# The longest `database` a destination on the service's cluster may name.
MAX_WORKSPACE_DATABASE = MAX_DATABASE_BYTES - len(PREFIX) - SLUG_CHARS - HASH_CHARS - 2
# Namespaces MongoDB keeps for itself, on every cluster.
RESERVED_DATABASES = frozenset({"admin", "config", "local"})
# MongoDB's own rule for database names (Windows is the strictest), plus NUL.
DATABASE_FORBIDDEN = re.compile(r'[/\\. "$*<>:|?\x00]')
# A full namespace (database.collection) must stay under 255 bytes; leave room for the staging suffix.
MAX_COLLECTION_BYTES = 120


def workspace_database(workspace_id: str, database: str) -> str:
    """The database a destination of `workspace_id` named `database` writes to on the service's cluster."""
    slug = re.sub(r"[^a-z0-9-]", "-", workspace_id.lower())[:SLUG_CHARS] or "-"
    digest = hashlib.sha256(workspace_id.encode()).hexdigest()[:HASH_CHARS]
    return f"{PREFIX}{slug}_{digest}_{database}"


def database_problem(name: str) -> str | None:
    """Why `name` may not be a destination's database; None when it may."""
    if not name:
        return "a database name is required"
    if name.lower() in RESERVED_DATABASES:
        return f"{name!r} is reserved by MongoDB"
    if DATABASE_FORBIDDEN.search(name):
        return 'a database name may not contain / \\ . space " $ * < > : | ? or NUL'
    if len(name.encode()) > MAX_DATABASE_BYTES:
        return f"a database name has at most {MAX_DATABASE_BYTES} bytes"
    return None


def collection_problem(name: str) -> str | None:
    """Why `name` may not be a collection a sync writes; None when it may."""
    if not name:
        return "a collection name is required"
    if "$" in name or "\x00" in name:
        return "a collection name may not contain $ or NUL"
    if name.startswith("system.") or name.startswith("."):
        return "collections named system.* (or starting with a dot) belong to MongoDB"
    if name.endswith("."):
        return "a collection name may not end with a dot"
    if len(name.encode()) > MAX_COLLECTION_BYTES:
        return f"a collection name has at most {MAX_COLLECTION_BYTES} bytes"
    return None


def refusing(problem: Callable[[str], str | None]) -> Callable[[str], str]:
    """A pydantic validator from a `*_problem` function: the value, or ValueError naming the problem."""

    def check(value: str) -> str:
        found = problem(value)
        if found:
            raise ValueError(found)
        return value

    return check


class NamespaceRefused(ValueError):
    """A write outside what the workspace may write."""


def check_destination_database(name: str, *, service_database: str | None = None) -> None:
    """Raise NamespaceRefused unless a sync may write to database `name` (on the service's cluster when
    `service_database` is given, the service's own database being refused)."""
    problem = database_problem(name)
    if problem is None and service_database is not None:
        if name.lower() == service_database.lower() or not name.startswith(PREFIX):
            problem = "only the workspace's own database may be written on the service's cluster"
    if problem:
        raise NamespaceRefused(f"database {name!r}: {problem}")


def check_collection(name: str) -> None:
    problem = collection_problem(name)
    if problem:
        raise NamespaceRefused(f"collection {name!r}: {problem}")
