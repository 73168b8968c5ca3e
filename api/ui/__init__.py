"""The web dashboard: pages at / and /ui/..., JSON views under /api/workspaces/{workspaceId}/dashboard/."""

from api.ui.pages import add_dashboard

__all__ = ["add_dashboard"]
