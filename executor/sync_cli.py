"""`syncjobs sync`: the built-in connector for `http` sources.

Reads the execution spec (one JSON line) on stdin and writes protocol lines on stdout: every record of
every selected entity, following the endpoint's pagination, then each entity's new cursor, then a result.
HTTP 429 and 5xx are retried with exponential backoff, honouring Retry-After. Exit 1 on failure, with the
reason on stderr.

Every connection passes the network policy the spec carries (executor/safe_http.py), every URL stays on the
origin of `baseUrl`, and an error names a status and a content type, never a page's text, and says the
same thing for a closed port as for a silent one.
"""

import asyncio
import email.utils
import json
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import urljoin

import aiohttp

from executor.protocol import Log, Record, Result, State, encode
from executor.safe_http import policy_session
from models.network_policy import AddressRefused, NetworkPolicy, url_origin
from models.secrets import masked_url

MAX_PAGES = 100_000
MAX_REDIRECTS = 10
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_BACKOFF_SECONDS = 60.0


class SyncFailed(Exception):
    pass


def value_at(body: Any, path: str) -> Any:
    """The value at a dotted path ("data.items"); the body itself for ""."""
    for part in filter(None, path.split(".")):
        if isinstance(body, dict):
            body = body.get(part)
        elif isinstance(body, list) and part.isdigit() and int(part) < len(body):
            body = body[int(part)]
        else:
            return None
    return body


def is_newer(value: Any, than: Any) -> bool:
    if than is None:
        return value is not None
    if value is None:
        return False
    if type(value) is type(than) or (isinstance(value, (int, float)) and isinstance(than, (int, float))):
        return value > than
    return str(value) > str(than)


def retry_after_seconds(header: str | None, attempt: int) -> float:
    """Seconds to wait before the next try: Retry-After (seconds or an HTTP date) when given, else backoff."""
    if header:
        try:
            return min(MAX_BACKOFF_SECONDS, max(0.0, float(header)))
        except ValueError:
            moment = email.utils.parsedate_to_datetime(header) if header else None
            if moment is not None:
                return min(MAX_BACKOFF_SECONDS, max(0.0, moment.timestamp() - time.time()))
    return min(MAX_BACKOFF_SECONDS, 0.5 * 2**attempt)


class HttpSync:
    def __init__(self, spec: dict[str, Any], out: TextIO):
        self._spec = spec
        self._source = spec["source"]
        self._out = out
        self._incremental = spec.get("syncMode") == "incremental"
        self._policy = NetworkPolicy.from_setting((spec.get("network") or {}).get("allowedNetworks"))
        self._origin = url_origin(self._source["baseUrl"])

    def emit(self, message) -> None:
        # A blocking write: when the executor stops reading, this process waits, which is the back-pressure.
        self._out.write(encode(message))

    async def run(self) -> None:
        # Absent or null: every entity; a list, even an empty one, is exactly what to sync.
        selection = self._spec.get("entities")
        wanted = None if selection is None else set(selection)
        timeout = aiohttp.ClientTimeout(total=self._source.get("requestTimeoutSeconds", 30))
        stats: dict[str, int] = {}
        async with policy_session(
            self._policy, headers=self._source.get("headers") or {}, timeout=timeout
        ) as session:
            for entity in self._source["entities"]:
                if wanted is not None and entity["name"] not in wanted:
                    continue
                stats[entity["name"]] = await self._sync_entity(session, entity)
        self.emit(Result("succeeded", {"records": stats}))
        self._out.flush()

    async def _sync_entity(self, session: aiohttp.ClientSession, entity: dict[str, Any]) -> int:
        name = entity["name"]
        cursor_field = entity.get("cursorField")
        saved = (self._spec.get("cursors") or {}).get(name) if self._incremental else None
        params = dict(entity.get("params") or {})
        if saved is not None and entity.get("cursorParam"):
            params[entity["cursorParam"]] = saved
        newest, count = saved, 0
        async for records in self._pages(session, entity, params):
            for record in records:
                if not isinstance(record, dict):
                    raise SyncFailed(f"{name}: a record is not a JSON object")
                if (
                    cursor_field
                    and self._incremental
                    and saved is not None
                    and not is_newer(record.get(cursor_field), saved)
                ):
                    continue
                self.emit(Record(name, record))
                count += 1
                if cursor_field and is_newer(record.get(cursor_field), newest):
                    newest = record.get(cursor_field)
        if cursor_field and newest is not None:
            self.emit(State(name, newest))
        self.emit(Log(f"{name}: {count} records"))
        return count

    async def _pages(self, session, entity: dict[str, Any], params: dict[str, Any]) -> AsyncIterator[list]:
        pagination = entity.get("pagination") or self._source.get("pagination") or {"type": "none"}
        kind = pagination.get("type", "none")
        size = pagination.get("pageSize", 100)
        size_param = pagination.get("sizeParam")
        url = self._on_origin(urljoin(self._source["baseUrl"].rstrip("/") + "/", entity["path"].lstrip("/")))
        if kind in ("page", "offset") and size_param:
            params[size_param] = size
        page, offset, cursor = pagination.get("firstPage", 1), 0, None
        for _ in range(MAX_PAGES):
            query = dict(params)
            if kind == "page":
                query[pagination.get("pageParam", "page")] = page
            elif kind == "offset":
                query[pagination.get("offsetParam", "offset")] = offset
            elif kind == "cursor" and cursor is not None:
                query[pagination.get("cursorParam", "cursor")] = cursor
            body, links = await self._get(session, url, query if kind != "link" or page == 1 else None)
            records = value_at(body, entity.get("recordsPath", ""))
            if not isinstance(records, list):
                raise SyncFailed(
                    f"{entity['name']}: no list of records at {entity.get('recordsPath') or 'the top'}"
                )
            yield records
            if kind == "none" or not records:
                return
            if kind in ("page", "offset") and len(records) < size:
                return
            if kind == "page":
                page += 1
            elif kind == "offset":
                offset += len(records)
            elif kind == "cursor":
                cursor = value_at(body, pagination.get("nextCursorPath", "next_cursor"))
                if not cursor:
                    return
            elif kind == "link":
                next_link = links.get("next")
                if next_link is None:
                    return
                url = self._on_origin(str(next_link.get("url")))
                page += 1
        raise SyncFailed(f"{entity['name']}: more than {MAX_PAGES} pages")

    def _on_origin(self, url: str) -> str:
        # The source's headers and query secrets go to its own API only: not to a path or a next link
        # that names another host.
        if url_origin(url) != self._origin:
            raise SyncFailed(f"{masked_url(url)} is not under the source's baseUrl")
        return url

    async def _get(self, session, url: str, params: dict | None) -> tuple[Any, Any]:
        # Redirects are followed here, not by aiohttp: on another origin it would drop only Authorization
        # and carry every other header of the source (an API key, say) to wherever the page points.
        for _ in range(MAX_REDIRECTS + 1):
            answer = await self._get_once(session, url, params)
            if not isinstance(answer, Redirect):
                return answer
            url, params = self._on_origin(answer.location), None
        raise SyncFailed(f"{masked_url(url)}: more than {MAX_REDIRECTS} redirects")

    async def _get_once(self, session, url: str, params: dict | None) -> "tuple[Any, Any] | Redirect":
        retries = self._source.get("maxRetries", 5)
        shown = masked_url(url)
        for attempt in range(retries + 1):
            try:
                async with session.get(url, params=params, allow_redirects=False) as response:
                    if response.status in REDIRECTS and response.headers.get("Location"):
                        return Redirect(urljoin(url, response.headers["Location"]))
                    if response.status == 429 or response.status >= 500:
                        if attempt == retries:
                            raise SyncFailed(f"HTTP {response.status} from {shown} after {retries} retries")
                        delay = retry_after_seconds(response.headers.get("Retry-After"), attempt)
                        self.emit(
                            Log(f"HTTP {response.status} from {shown}; retrying in {delay:.1f} s", "warning")
                        )
                        await asyncio.sleep(delay)
                        continue
                    if response.status >= 400:
                        raise SyncFailed(f"HTTP {response.status} from {shown}")
                    try:
                        return json.loads(await response.read()), response.links
                    except ValueError:
                        # The page's text stays out: it may be an internal page the source was not meant
                        # to show.
                        raise SyncFailed(
                            f"{shown} answered HTTP {response.status} with content type "
                            f"{response.content_type!r}, not JSON"
                        ) from None
            except AddressRefused as refused:
                raise SyncFailed(str(refused)) from None
            except (aiohttp.ClientError, TimeoutError):
                # One message for a refused connection, a reset, a timeout and a bad certificate alike, so
                # the connector cannot be used to tell open ports from closed ones.
                if attempt == retries:
                    raise SyncFailed(f"{shown}: could not get an answer") from None
                delay = retry_after_seconds(None, attempt)
                self.emit(Log(f"{shown}: no answer; retrying in {delay:.1f} s", "warning"))
                await asyncio.sleep(delay)
        raise SyncFailed(f"{shown}: gave up")


@dataclass(frozen=True)
class Redirect:
    location: str


def run_sync_process(stdin: TextIO, stdout: TextIO) -> int:
    """The `syncjobs sync` command: 0 when every entity synced, 1 (reason on stderr) otherwise."""
    try:
        spec = json.loads(stdin.readline())
        asyncio.run(HttpSync(spec, stdout).run())
    except (SyncFailed, ValueError, KeyError) as error:
        stdout.flush()
        sys.stderr.write(f"sync failed: {error}\n")
        return 1
    return 0
