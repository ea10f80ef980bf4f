"""Signed approval links: one per (run, role, principal), so an approver needs no account or token.

The link carries who may decide what, signed with ``TOLLGATE_LINK_SECRET`` (HMAC, via
``itsdangerous``) and stamped with its expiry (the run's expiry). It grants nothing by itself:
whoever opens it still meets the run's own judgement (the role must be pending, an escalation
contact's role escalated), so a link stops working when its role has decided or the run closed.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from itsdangerous import BadSignature, URLSafeSerializer, URLSafeTimedSerializer

SALT = "tollgate-approval-link"
FORM_SALT = "tollgate-approval-form"
# How long a rendered approval form may be posted back (its CSRF token's lifetime).
FORM_MAX_AGE_SECONDS = 12 * 3600


@dataclass(frozen=True)
class Grant:
    run_id: str
    role: str
    principal_id: str
    expires_at: datetime


class LinkInvalid(Exception):
    """Not a link Tollgate signed (tampered, truncated, or signed with another secret)."""


class NoLinkSecret(Exception):
    """No TOLLGATE_LINK_SECRET is set: links are neither signed nor read with an empty key."""


class LinkExpired(Exception):
    def __init__(self, grant: Grant) -> None:
        super().__init__(f"the link expired at {grant.expires_at.isoformat()}")
        self.grant = grant


def sign(secret: str, grant: Grant) -> str:
    _require(secret)
    payload = [grant.run_id, grant.role, grant.principal_id, int(grant.expires_at.timestamp())]
    return URLSafeSerializer(secret, salt=SALT).dumps(payload)


def read(secret: str, token: str, now: datetime) -> Grant:
    """The grant a token carries; LinkInvalid if it was not signed here, LinkExpired if late."""
    _require(secret)
    try:
        run_id, role, principal_id, expires = URLSafeSerializer(secret, salt=SALT).loads(token)
        grant = Grant(run_id, role, principal_id, datetime.fromtimestamp(int(expires), UTC))
    except (BadSignature, ValueError, TypeError) as exc:
        raise LinkInvalid("this approval link is not valid") from exc
    if now >= grant.expires_at:
        raise LinkExpired(grant)
    return grant


def approval_url(public_url: str, secret: str, grant: Grant) -> str:
    return f"{public_url}/approve/{sign(secret, grant)}"


def _require(secret: str) -> None:
    if not secret:
        raise NoLinkSecret("TOLLGATE_LINK_SECRET is not set; approval links are switched off")


def link_secret(configured: str, data: Path) -> str:
    """TOLLGATE_LINK_SECRET, or one generated once and kept in the data folder (for dev)."""
    if configured:
        return configured
    path = data / "link-secret"
    if not path.exists():
        path.write_text(f"{secrets.token_urlsafe(32)}\n")
        path.chmod(0o600)
    return path.read_text().strip()


# ---- the approval page's form: a CSRF token per render, bound to the link ----------------------


def form_token(secret: str, link_token: str) -> str:
    """Signed (with the link secret) and timestamped, naming the link it was rendered for: a post
    must come from a page this server rendered for this very link within FORM_MAX_AGE_SECONDS."""
    _require(secret)
    return URLSafeTimedSerializer(secret, salt=FORM_SALT).dumps(_digest(link_token))


def form_token_valid(secret: str, link_token: str, submitted: str) -> bool:
    try:
        bound = URLSafeTimedSerializer(secret, salt=FORM_SALT).loads(
            submitted, max_age=FORM_MAX_AGE_SECONDS
        )
    except BadSignature:  # also SignatureExpired
        return False
    return secrets.compare_digest(str(bound), _digest(link_token))


def _digest(link_token: str) -> str:
    return hashlib.sha256(link_token.encode()).hexdigest()[:32]
