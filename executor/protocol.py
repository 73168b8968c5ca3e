"""The JSON-lines protocol a source speaks on stdout, one message a line.

    {"type": "record", "entity": "customers", "data": {...}}
    {"type": "state", "entity": "customers", "cursor": "2030-01-01T00:00:00Z"}
    {"type": "log", "level": "info", "message": "..."}
    {"type": "result", "status": "succeeded", "stats": {...}}

Anything else on stdout (or any stderr line) is not an error: it is kept as a log line.
"""

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Record:
    entity: str
    data: dict[str, Any]


@dataclass(frozen=True)
class State:
    entity: str
    cursor: Any


@dataclass(frozen=True)
class Log:
    message: str
    level: str = "info"


@dataclass(frozen=True)
class Raw:
    """A stdout line that is not a protocol message; kept as a log line, never an error."""

    text: str


@dataclass(frozen=True)
class Result:
    status: str
    stats: dict[str, Any]


Message = Record | State | Log | Result | Raw


def parse_line(line: str) -> Message:
    """The message on one stdout line; a line that is not a protocol message comes back as Raw."""
    text = line.rstrip("\r\n")
    try:
        payload = json.loads(text)
    except ValueError:
        return Raw(text)
    if not isinstance(payload, dict):
        return Raw(text)
    kind = payload.get("type")
    if kind == "record" and isinstance(payload.get("entity"), str) and isinstance(payload.get("data"), dict):
        return Record(payload["entity"], payload["data"])
    if kind == "state" and isinstance(payload.get("entity"), str) and "cursor" in payload:
        return State(payload["entity"], payload["cursor"])
    if kind == "log" and "message" in payload:
        return Log(str(payload["message"]), str(payload.get("level", "info")))
    if kind == "result":
        stats = payload.get("stats")
        return Result(str(payload.get("status", "succeeded")), stats if isinstance(stats, dict) else {})
    return Raw(text)


def encode(message: Message) -> str:
    """One protocol line (with its newline), for sources written in Python."""
    if isinstance(message, Record):
        payload = {"type": "record", "entity": message.entity, "data": message.data}
    elif isinstance(message, State):
        payload = {"type": "state", "entity": message.entity, "cursor": message.cursor}
    elif isinstance(message, Log):
        payload = {"type": "log", "level": message.level, "message": message.message}
    else:
        payload = {"type": "result", "status": message.status, "stats": message.stats}
    return json.dumps(payload, default=str, separators=(",", ":")) + "\n"
