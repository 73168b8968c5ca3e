"""Which role each route needs: read with `viewer`, act with `operator`, write with `editor`, manage tokens
with `owner`, and /api/admin with an admin token."""

from models.tokens import ADMIN, Role

# POSTs that act on a job or a run without changing what it is.
OPERATOR_ACTIONS = ("/run", "/toggle", "/enable", "/disable", "/cancel", "/pause", "/resume")


def required_role(method: str, path: str) -> str:
    """The least role for `method` on the route template `path` (e.g. .../sync-jobs/{jobId}/run)."""
    if path.startswith("/api/admin/"):
        return ADMIN
    if "/tokens" in path:
        return Role.OWNER
    if method in ("GET", "HEAD", "OPTIONS"):
        return Role.VIEWER
    if method == "POST" and path.endswith(OPERATOR_ACTIONS):
        return Role.OPERATOR
    return Role.EDITOR
