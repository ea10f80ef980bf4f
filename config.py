"""Tollgate's configuration: one place, environment variables prefixed ``TOLLGATE_``."""

from functools import lru_cache

from pydantic import field_validator
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
    # Ports of the Temporal dev server that ``tollgate dev`` starts.
    dev_temporal_port: int = 7233
    dev_ui_port: int = 8233
    # Invoices are numbered "<prefix>-<year>-000001", credit notes "<prefix>-CN-<year>-000001".
    issuer_prefix: str = "TG"
    # When the Schedule finalizes every non-empty draft (cron, UTC); "" disables the Schedule.
    finalize_cron: str = "0 0 1 * *"

    @field_validator("issuer_prefix")
    @classmethod
    def _prefix_forms_numbers(cls, prefix: str) -> str:
        document_number(f"{prefix}-CN", 2000, 1)  # raises a ValueError naming the rule
        return prefix


@lru_cache
def get_settings() -> Settings:
    return Settings()
