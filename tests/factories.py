"""Small builders of request bodies and documents; override what a test is about."""

from typing import Any


def sync_job_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "name": "Hourly Stripe Sync",
        "dataSourceId": overrides.pop("dataSourceId", None),
        "destinationDatabaseId": overrides.pop("destinationDatabaseId", None),
        "schedule": {"cron": "0 * * * *", "timezone": "America/New_York"},
        "syncMode": "incremental",
        "enabled": True,
    }
    body.update(overrides)
    return body


def http_source_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "name": "Stripe",
        "type": "http",
        "baseUrl": "https://api.example.com",
        "headers": {"Authorization": "Bearer sk_live_secret"},
        "entities": [{"name": "customers", "path": "/customers", "recordsPath": "data"}],
    }
    body.update(overrides)
    return body


def destination_body(**overrides: Any) -> dict[str, Any]:
    body = {"name": "Warehouse", "type": "mongodb", "database": "warehouse"}
    body.update(overrides)
    return body
