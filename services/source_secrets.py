"""Inbound sources' signing secrets: made, kept encrypted, and used to verify deliveries.

Verifying a Standard Webhooks signature needs the secret itself, so it is stored encrypted
(Fernet) under a key derived with HKDF from ``TOLLGATE_LINK_SECRET`` — its own key, not the
link-signing one, so neither use can stand in for the other. Changing the link secret therefore
makes stored source secrets unreadable: rotate every source's secret after changing it.
"""

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from services.errors import Problem

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # Standard Webhooks: 24 to 64 random bytes
KEY_INFO = b"tollgate inbound-source signing secrets"


class BadSignature(Exception):
    """The delivery is not signed by this source (or is stale): answered 401, nothing kept."""


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _fernet(link_secret: str) -> Fernet:
    if not link_secret:
        raise Problem(
            503,
            "sources-unavailable",
            "Inbound sources unavailable",
            "No TOLLGATE_LINK_SECRET is configured, so no source secret can be kept or read.",
        )
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=KEY_INFO).derive(
        link_secret.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(link_secret: str, secret: str) -> str:
    return _fernet(link_secret).encrypt(secret.encode()).decode()


def decrypt(link_secret: str, stored: str) -> str:
    try:
        return _fernet(link_secret).decrypt(stored.encode()).decode()
    except InvalidToken:
        raise Problem(
            503,
            "source-secret-unreadable",
            "Source secret unreadable",
            "The source's secret cannot be read with the configured TOLLGATE_LINK_SECRET "
            "(was it changed?); an admin must rotate the source's secret.",
        ) from None


@dataclass(frozen=True)
class Secrets:
    """The secrets a delivery may be signed with at one moment."""

    current: str
    previous: str | None = None
    previous_valid_until: datetime | None = None

    def valid(self, now: datetime) -> list[str]:
        if self.previous and self.previous_valid_until and now < self.previous_valid_until:
            return [self.current, self.previous]
        return [self.current]


def verify(keys: Secrets, body: bytes, headers: dict[str, str], now: datetime) -> None:
    """Raise ``BadSignature`` unless one of the signatures (``v1,…``, space separated) is this
    body's under a secret valid ``now``, with a ``webhook-timestamp`` within five minutes."""
    reason = "no signature matches"
    for secret in keys.valid(now):
        try:
            Webhook(secret).verify(body, headers, json_parse=False)
            return
        except WebhookVerificationError as exc:
            reason = str(exc)
        except ValueError:  # a malformed header (bad base64 too), or a body that is not UTF-8
            reason = "malformed signature headers or body"
        if reason != "No matching signature found":
            break  # missing headers or a stale timestamp: no other secret changes that
    raise BadSignature(reason)
