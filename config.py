"""Tollgate's configuration: one place, environment variables prefixed ``TOLLGATE_``."""

from functools import lru_cache
from typing import Literal

from pydantic import Field, field_validator, model_validator
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
    # The reverse proxies (IPs or CIDRs, comma-separated) whose X-Forwarded-For and
    # X-Forwarded-Proto the API believes: the client address a signed trigger URL's audit
    # records is then the proxy's client, not the proxy. Empty: no proxy is believed, the TCP
    # peer is the client (a header any caller can set is never read).
    trusted_proxies: str = ""
    # Ports of the Temporal dev server that ``tollgate dev`` starts.
    dev_temporal_port: int = 7233
    dev_ui_port: int = 8233
    # Invoices are numbered "<prefix>-<year>-000001", credit notes "<prefix>-CN-<year>-000001".
    issuer_prefix: str = "TG"
    # Who issues the documents (the PDFs' letterhead). The address's lines are separated by
    # newlines (in a .env file: double-quoted, with \n); empty fields are left out.
    issuer_name: str = "Tollgate"
    issuer_address: str = ""
    issuer_tax_id: str = ""
    issuer_email: str = ""
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
    # The API the operator commands (``tollgate runs …``) talk to; default: public_url.
    api_url: str = ""
    # The worker's Prometheus metrics (Temporal SDK) on http://{api_host}:{port}/metrics; 0: off.
    worker_metrics_port: int = 0
    # Outbound email (``tollgate dev`` points it at its local mail sink). smtp_tls: "none",
    # "starttls" or "tls" (implicit TLS, usually port 465).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_tls: Literal["none", "starttls", "tls"] = "none"
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_from: str = "Tollgate <tollgate@localhost>"
    # Where operators' notices (a run failed) are mailed; without it they end dead, listed
    # by GET /v1/notifications?status=dead.
    operators_email: str = ""
    # Delivery retries: the n-th failed attempt waits backoff * 2^(n-1), at most backoff_max;
    # after max_attempts the notification is dead (an admin can redeliver it).
    delivery_max_attempts: int = Field(8, ge=1, le=50)
    delivery_backoff_seconds: float = Field(30, gt=0)
    delivery_backoff_max_seconds: float = Field(3600, gt=0)
    # One SMTP conversation or webhook POST may take this long before it counts as failed.
    delivery_timeout_seconds: float = Field(10, gt=0)
    # How often pending notifications whose delivery never started are started; 0 disables.
    delivery_sweep_every_seconds: int = 60
    # Let webhooks go to loopback, private, link-local and other non-public addresses: for local
    # development and tests only (``tollgate dev`` turns it on); otherwise an endpoint's URL
    # could make the worker reach inside the network.
    webhook_allow_private: bool = False

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
