"""Tollgate's configuration: one place, environment variables prefixed ``TOLLGATE_``."""

from functools import lru_cache

from pydantic import field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.documents import document_number


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOLLGATE_", extra="ignore")

    database_url: str = "sqlite:///data/tollgate.db"
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "tollgate"
    admin_token: str | None = None
    evidence_max_bytes: int = 25 * 1024 * 1024
    data_dir: str = "data"
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # Where clients reach the API: absolute URLs in responses start with it, never with the
    # request's Host header. Defaults to http://{api_host}:{api_port}.
    public_url: str = ""
    # Ports of the Temporal dev server that ``tollgate dev`` starts.
    dev_temporal_port: int = 7233
    dev_ui_port: int = 8233
    # Invoices are numbered "<prefix>-<year>-000001", credit notes "<prefix>-CN-<year>-000001".
    issuer_prefix: str = "TG"
    # When the Schedule finalizes every non-empty draft (cron, UTC); "" disables the Schedule.
    finalize_cron: str = "0 0 1 * *"
    # The IANA zone the cron is read in; each draft still waits for its own calendar's midnight.
    finalize_timezone: str = "UTC"
    # Signs approvers' links (HMAC); ``tollgate dev`` generates one into the data folder.
    link_secret: str = ""
    # How long a decision or cancellation waits for its run to answer before a 503.
    update_patience_seconds: float = 10
    # How often the reconciler starts unstarted runs and releases stale claims; 0 disables it.
    reconcile_every_seconds: int = 300

    @field_validator("issuer_prefix")
    @classmethod
    def _prefix_forms_numbers(cls, prefix: str) -> str:
        document_number(f"{prefix}-CN", 2000, 1)  # raises a ValueError naming the rule
        return prefix

    @model_validator(mode="after")
    def _default_public_url(self) -> "Settings":
        self.public_url = (self.public_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
