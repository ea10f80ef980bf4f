"""Sending one batch of notifications: emails over one SMTP connection (``aiosmtplib``),
webhooks POSTed with ``httpx`` and signed per the Standard Webhooks spec (``standardwebhooks``),
with the row's ``message_id`` as ``webhook-id`` so a receiver can drop the duplicates that
at-least-once delivery implies. Nothing here touches the database.
"""

import asyncio
import json
import socket
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage

import aiosmtplib
import httpx
from standardwebhooks import Webhook

from config import Settings
from domain.times import iso
from services.notice_content import Channel
from services.webhook_targets import TargetRefused, TargetUnresolved, resolve

# Error texts kept per attempt and on the row: enough to diagnose, bounded in size.
MAX_ERROR_CHARS = 1000
NO_ADDRESS = "no address: set TOLLGATE_OPERATORS_EMAIL for operators' notices"
NETWORK_ERRORS = (OSError, aiosmtplib.SMTPException, httpx.HTTPError, TimeoutError)


@dataclass(frozen=True)
class DeliveryConfig:
    smtp_host: str
    smtp_port: int
    smtp_tls: str  # none | starttls | tls
    smtp_user: str
    smtp_password: str
    smtp_from: str
    operators_email: str
    max_attempts: int
    backoff_seconds: float
    backoff_max_seconds: float
    timeout_seconds: float
    webhook_allow_private: bool
    # How this host greets SMTP servers (EHLO); looked up once, not per connection.
    local_hostname: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "DeliveryConfig":
        return cls(
            smtp_host=settings.smtp_host,
            smtp_port=settings.smtp_port,
            smtp_tls=settings.smtp_tls,
            smtp_user=settings.smtp_user,
            smtp_password=settings.smtp_password,
            smtp_from=settings.smtp_from,
            operators_email=settings.operators_email,
            max_attempts=settings.delivery_max_attempts,
            backoff_seconds=settings.delivery_backoff_seconds,
            backoff_max_seconds=settings.delivery_backoff_max_seconds,
            timeout_seconds=settings.delivery_timeout_seconds,
            webhook_allow_private=settings.webhook_allow_private,
            local_hostname=socket.getfqdn(),
        )

    def backoff(self, failed_attempts: int) -> float:
        """Seconds to wait after the n-th failed attempt: doubling, capped."""
        return min(self.backoff_seconds * 2 ** (failed_attempts - 1), self.backoff_max_seconds)


@dataclass(frozen=True)
class Outgoing:
    """What one attempt sends, read from the row before the network is touched."""

    id: int
    channel: str
    kind: str
    address: str | None
    subject: str
    body_text: str
    body_html: str
    message_id: str
    created_at: datetime
    payload: dict
    secret: str | None


@dataclass(frozen=True)
class Sent:
    ok: bool
    response_code: int | None = None
    error: str | None = None
    # Retrying cannot help (no address, the endpoint is gone): the notification is dead at once.
    permanent: bool = False


@dataclass(frozen=True)
class Attempt:
    sent: Sent
    duration_ms: int


async def send_all(outgoing: list[Outgoing], config: DeliveryConfig) -> dict[int, Attempt]:
    """One attempt at each: the emails one after another over one SMTP connection, the
    webhooks alongside them. Keyed by row id."""
    emails = [o for o in outgoing if o.channel != Channel.WEBHOOK]
    hooks = [o for o in outgoing if o.channel == Channel.WEBHOOK]
    results = await asyncio.gather(_send_emails(emails, config), *(_post(o, config) for o in hooks))
    attempts: dict[int, Attempt] = dict(results[0])
    attempts.update(results[1:])
    return attempts


async def _timed(send: Awaitable[Sent]) -> Attempt:
    started = time.perf_counter()
    try:
        sent = await send
    except NETWORK_ERRORS as exc:
        sent = failed(exc)
    return Attempt(sent, round((time.perf_counter() - started) * 1000))


async def _post(outgoing: Outgoing, config: DeliveryConfig) -> tuple[int, Attempt]:
    return outgoing.id, await _timed(post_webhook(outgoing, config))


def failed(exc: BaseException) -> Sent:
    return Sent(False, error=f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS])


async def _send_emails(emails: list[Outgoing], config: DeliveryConfig) -> list[tuple[int, Attempt]]:
    """A connection that cannot be opened fails every email in the batch; a message refused,
    or a connection lost midway, fails only what it touches (each is retried on its own)."""
    addressed = [(o, o.address or config.operators_email) for o in emails]
    attempts = [
        (o.id, Attempt(Sent(False, error=NO_ADDRESS, permanent=True), 0))
        for o, address in addressed
        if not address
    ]
    to_send = [(o, address) for o, address in addressed if address]
    if not to_send:
        return attempts
    smtp = aiosmtplib.SMTP(
        hostname=config.smtp_host,
        port=config.smtp_port,
        username=config.smtp_user or None,
        password=config.smtp_password or None,
        use_tls=config.smtp_tls == "tls",
        start_tls=config.smtp_tls == "starttls",
        timeout=config.timeout_seconds,
        local_hostname=config.local_hostname,
    )
    connecting = await _timed(_connect(smtp))
    if not connecting.sent.ok:
        return attempts + [(o.id, connecting) for o, _ in to_send]
    try:
        for outgoing, address in to_send:
            if not smtp.is_connected:
                attempt = Attempt(Sent(False, error="SMTP connection lost"), 0)
            else:
                attempt = await _timed(send_email(smtp, outgoing, address, config))
            attempts.append((outgoing.id, attempt))
    finally:
        if smtp.is_connected:
            try:
                await smtp.quit()
            except NETWORK_ERRORS:
                smtp.close()
    return attempts


async def _connect(smtp: aiosmtplib.SMTP) -> Sent:
    await smtp.connect()
    return Sent(True)


async def send_email(
    smtp: aiosmtplib.SMTP, outgoing: Outgoing, address: str, config: DeliveryConfig
) -> Sent:
    message = EmailMessage()
    message["Subject"] = outgoing.subject
    message["From"] = config.smtp_from
    message["To"] = address
    message["Message-ID"] = f"<{outgoing.message_id}@tollgate>"
    message.set_content(outgoing.body_text)
    message.add_alternative(outgoing.body_html, subtype="html")
    errors, _reply = await smtp.send_message(message)
    if errors:
        return Sent(False, error=f"refused: {errors}"[:MAX_ERROR_CHARS])
    return Sent(True, response_code=250, error=None)


def webhook_body(outgoing: Outgoing) -> str:
    """The Standard Webhooks payload shape: the same bytes on every retry."""
    envelope = {
        "type": outgoing.kind,
        "timestamp": iso(outgoing.created_at),
        "data": outgoing.payload,
    }
    return json.dumps(envelope, separators=(",", ":"), sort_keys=True)


async def post_webhook(outgoing: Outgoing, config: DeliveryConfig) -> Sent:
    """Post to the address checked just now (``services.webhook_targets``): a URL that may not
    receive webhooks is a permanent failure, a host DNS cannot find now a retryable one."""
    if outgoing.secret is None or outgoing.address is None:
        return Sent(False, error="the webhook endpoint no longer exists", permanent=True)
    try:
        target = await resolve(outgoing.address, allow_private=config.webhook_allow_private)
    except TargetRefused as exc:
        return Sent(False, error=f"refused: {exc}"[:MAX_ERROR_CHARS], permanent=True)
    except TargetUnresolved as exc:
        return Sent(False, error=str(exc)[:MAX_ERROR_CHARS])
    body = webhook_body(outgoing)
    now = datetime.now(UTC)
    signature = Webhook(outgoing.secret).sign(outgoing.message_id, now, body)
    headers = {
        "content-type": "application/json",
        "webhook-id": outgoing.message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    # Never follow a redirect: it could point anywhere, past the check above.
    async with httpx.AsyncClient(timeout=config.timeout_seconds, follow_redirects=False) as http:
        response = await http.post(
            target.url,
            content=body.encode(),
            headers={**headers, **target.headers},
            extensions=target.extensions,
        )
    if response.is_success:
        return Sent(True, response_code=response.status_code)
    return Sent(
        False,
        response_code=response.status_code,
        error=f"HTTP {response.status_code}: {response.text[:200]}",
    )
