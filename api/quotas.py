"""Per-workspace limits on how many jobs, data sources, destinations and tokens it may hold."""

from api.errors import QuotaExceeded
from models.settings import Settings

LIMIT_SETTINGS = {
    "sync jobs": "workspace_max_jobs",
    "data sources": "workspace_max_data_sources",
    "destinations": "workspace_max_destinations",
    "tokens": "workspace_max_tokens",
}


def ensure_room(settings: Settings, what: str, count: int) -> None:
    """QuotaExceeded (409), naming the limit, when a workspace already holding `count` of `what` is full."""
    setting = LIMIT_SETTINGS[what]
    limit = getattr(settings, setting)
    if count >= limit:
        raise QuotaExceeded(
            f"This workspace has reached its limit of {limit} {what} ({setting.upper()})",
            details={"limit": setting, "max": limit, "count": count},
        )
