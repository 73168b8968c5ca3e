"""RFC 7396 JSON merge patch, the semantics of every PATCH in this API."""

from typing import Any


def merge_patch(target: Any, patch: Any) -> Any:
    """Objects merge, null removes (so the default applies), anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result
