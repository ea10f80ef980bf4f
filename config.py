"""Tollgate's configuration: one place, environment variables prefixed ``TOLLGATE_``."""

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


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


@lru_cache
def get_settings() -> Settings:
    return Settings()
