"""Configuration from the environment, read once at an entry point and passed down."""

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the API, the worker and the executor; each reads the variable of its upper-case name."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    mongodb_url: str | None = Field(default=None, description="Unset: the in-memory database (demo only).")
    mongodb_db: str = "syncjobs"
    mongodb_connect_timeout_seconds: float = Field(
        default=10, gt=0, description="How long start-up waits for MONGODB_URL to answer before giving up."
    )

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8080, ge=1, le=65535)
    api_max_body_bytes: int = 1024 * 1024
    syncjobs_bootstrap_token: SecretStr | None = None
    syncjobs_secret_key: SecretStr | None = Field(
        default=None, description="Fernet key for data-source secrets at rest; the demo makes one."
    )
    log_format: Literal["json", "console"] = "json"
    log_level: str = Field(default="info", pattern="(?i)^(debug|info|warning|error|critical)$")

    execution_retention_days: float = Field(default=30, gt=0)

    worker_lease_seconds: float = Field(default=30, gt=0)
    worker_renew_seconds: float | None = Field(
        default=None, gt=0, description="Default: a third of the lease."
    )
    worker_clock_skew_seconds: float = Field(default=2, ge=0)
    job_lock_ttl_seconds: float = Field(default=60, gt=0)
    poll_interval_seconds: float = Field(default=2, gt=0)
    resync_interval_seconds: float = Field(default=60, gt=0)
    max_concurrent_runs: int = Field(default=4, ge=1)
    max_runs_per_workspace: int | None = Field(
        default=None, ge=1, description="Runs one workspace may have going at once; unset: no cap."
    )
    worker_labels: str = Field(
        default="",
        pattern=r"^[a-z0-9_.,-]*$",
        description="Comma-separated labels this worker offers (connectors installed only here, say gpu): "
        "a job that requires a label runs only on workers offering it.",
    )
    shutdown_grace_seconds: float = Field(default=30, ge=0)
    default_timeout_seconds: int = Field(default=3600, ge=1)
    kill_grace_seconds: float = Field(default=10, ge=0)
    reload_mode: str = Field(
        default="auto",
        pattern="^(auto|change_streams|polling)$",
        description="auto: change streams where the server has them, else polling.",
    )

    syncjobs_secret_key_file: str | None = Field(
        default=None, description="A file holding the Fernet key, read when SYNCJOBS_SECRET_KEY is unset."
    )
    syncjobs_connectors_file: str | None = Field(
        default=None, description="The operator's connector catalog, JSON or TOML (see README)."
    )
    source_user: str = Field(
        default="nobody", description="When the worker runs as root, sources run as this user."
    )
    syncjobs_allowed_networks: str = Field(
        default="",
        description="Comma-separated CIDRs that sources, destinations and webhooks may reach beyond the "
        "public internet.",
    )
    dashboard_refresh_seconds: float = Field(
        default=1.0, gt=0, description="How often the dashboard's live stream looks for changes."
    )

    worker_status_port: int | None = Field(
        default=None, ge=0, le=65535, description="Serve /healthz, /readyz and /metrics of the worker."
    )
    worker_status_host: str = "127.0.0.1"
    webhook_timeout_seconds: float = Field(default=10, gt=0)
    webhook_max_attempts: int = Field(default=5, ge=1)
    webhook_backoff_seconds: float = Field(default=10, gt=0)
    webhook_max_backoff_seconds: float = Field(default=900, gt=0)

    @property
    def labels(self) -> list[str]:
        return sorted({label for label in self.worker_labels.split(",") if label})

    @property
    def renew_seconds(self) -> float:
        # Renewed at a third of the lease so one missed heartbeat does not drop the lock.
        return self.worker_renew_seconds or self.worker_lease_seconds / 3

    # Per workspace: creations past these answer 409 naming the limit (checked before the insert, so
    # creations racing each other may pass it by the number in flight).
    workspace_max_jobs: int = Field(default=1000, ge=0)
    workspace_max_data_sources: int = Field(default=100, ge=0)
    workspace_max_destinations: int = Field(default=100, ge=0)
    workspace_max_tokens: int = Field(default=50, ge=0)
    # Per token, per API process: a token bucket refilled at this rate up to the burst; past it, 429.
    api_rate_per_second: float = Field(default=50, gt=0)
    api_rate_burst: int = Field(default=100, ge=1)
