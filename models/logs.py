"""structlog set up once per entry point: JSON in production, console in development."""

import logging
import re
import sys

import structlog

SECRET_KEYS = re.compile(r"(token|secret|password|authorization|api[_-]?key|credential)", re.IGNORECASE)


def redact_secrets(_logger, _method, event_dict):
    """A last line of defence: a field whose name says secret never reaches the log."""
    for key in list(event_dict):
        if key != "event" and SECRET_KEYS.search(key) and not key.endswith(("_id", "Id", "_count")):
            event_dict[key] = "***"
    return event_dict


def configure_logging(*, fmt: str = "json", level: str = "info") -> None:
    # Colour codes only for a terminal: piped into a file or a collector they are noise.
    renderer = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        cache_logger_on_first_use=True,
    )
