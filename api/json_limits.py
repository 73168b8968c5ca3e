"""What a JSON body may hold before it reaches the models: shallow enough to walk without recursion
limits, and nothing BSON cannot store (a NUL in an object key, an integer past 64 bits)."""

from typing import Any

from models.errors import ValidationFailed

# Real bodies nest about 5 deep (a source's entity's pagination); 32 leaves room and stays far from
# Python's recursion limit, which a ~990-deep body reached in the validators and the merge patch.
MAX_DEPTH = 32
INT64 = (-(2**63), 2**63 - 1)


class TooDeep(ValueError):
    """The JSON body is nested too deeply."""


def check_json_limits(data: Any) -> None:
    """Raise TooDeep past MAX_DEPTH; ValidationFailed, naming each field, for what BSON cannot store."""
    problems: list[dict[str, str]] = []
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise TooDeep(f"nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, dict):
            for key, item in value.items():
                field = f"{path}.{key}" if path else key
                if "\x00" in key:
                    problems.append({"field": field.replace("\x00", "\\u0000"), "message": "NUL in a key"})
                else:
                    stack.append((item, field, depth + 1))
        elif isinstance(value, list):
            stack.extend(
                (item, f"{path}.{index}" if path else str(index), depth + 1)
                for index, item in enumerate(value)
            )
        elif isinstance(value, int) and not isinstance(value, bool) and not INT64[0] <= value <= INT64[1]:
            problems.append({"field": path, "message": "integer out of the 64-bit range"})
    if problems:
        raise ValidationFailed("The request body holds what cannot be stored", details=problems)
