"""Configuration from the environment, read once at an entry point and passed down."""

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the API, the worker and the executor; each reads the variable of its upper-case name."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    mongodb_url: str | None = Field(default=None, description="Unset: the in-memory database (demo only).")
    mongodb_db: str = "syncjobs"

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8080, ge=1, le=65535)
    api_max_body_bytes: int = 1024 * 1024
    syncjobs_bootstrap_token: SecretStr | None = None
    syncjobs_secret_key: SecretStr | None = Field(
        default=None, description="Fernet key for data-source secrets at rest; the demo makes one."
    )
    log_format: str = Field(default="json", pattern="^(json|console)$")
    log_level: str = "info"

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
    shutdown_grace_seconds: float = Field(default=30, ge=0)
    default_timeout_seconds: int = Field(default=3600, ge=1)
    kill_grace_seconds: float = Field(default=10, ge=0)

    worker_status_port: int | None = Field(
        default=None, ge=0, le=65535, description="Serve /healthz, /readyz and /metrics of the worker."
    )
    worker_status_host: str = "127.0.0.1"
    syncjobs_allowed_networks: str = Field(
        default="",
        description="Comma-separated CIDRs that webhooks may reach although private, loopback or link-local.",
    )
    webhook_timeout_seconds: float = Field(default=10, gt=0)
    webhook_max_attempts: int = Field(default=5, ge=1)
    webhook_backoff_seconds: float = Field(default=10, gt=0)
    webhook_max_backoff_seconds: float = Field(default=900, gt=0)

    @property
    def renew_seconds(self) -> float:
        # Renewed at a third of the lease so one missed heartbeat does not drop the lock.
        return self.worker_renew_seconds or self.worker_lease_seconds / 3
