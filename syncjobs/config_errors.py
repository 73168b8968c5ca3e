"""A bad environment variable, said in one line: the variable, what it was, and what it may be."""

from pydantic import ValidationError

ALLOWED = {
    "api_port": "an integer from 1 to 65535",
    "log_format": "json or console",
    "log_level": "debug, info, warning, error or critical",
}


def explain(error: ValidationError) -> list[str]:
    """One line per bad setting, naming its environment variable; never a traceback."""
    lines = []
    for item in error.errors(include_url=False):
        field = str(item["loc"][0]) if item["loc"] else ""
        allowed = ALLOWED.get(field, item["msg"].removeprefix("Value error, "))
        lines.append(f"syncjobs: {field.upper()}={item.get('input')!r} is not valid; it must be {allowed}")
    return lines
