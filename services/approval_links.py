"""Signed approval links: one per (run, role, principal), so an approver needs no account or token.

The link carries who may decide what, signed with ``TOLLGATE_LINK_SECRET`` (HMAC, via
``itsdangerous``) and stamped with its expiry (the run's expiry). It grants nothing by itself:
whoever opens it still meets the run's own judgement (the role must be pending, an escalation
contact's role escalated), so a link stops working when its role has decided or the run closed.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from itsdangerous import BadSignature, URLSafeSerializer

SALT = "tollgate-approval-link"


@dataclass(frozen=True)
class Grant:
    run_id: str
    role: str
    principal_id: str
    expires_at: datetime


class LinkInvalid(Exception):
    """Not a link Tollgate signed (tampered, truncated, or signed with another secret)."""


class LinkExpired(Exception):
    def __init__(self, grant: Grant) -> None:
        super().__init__(f"the link expired at {grant.expires_at.isoformat()}")
        self.grant = grant


def sign(secret: str, grant: Grant) -> str:
    payload = [grant.run_id, grant.role, grant.principal_id, int(grant.expires_at.timestamp())]
    return URLSafeSerializer(secret, salt=SALT).dumps(payload)


def read(secret: str, token: str, now: datetime) -> Grant:
    """The grant a token carries; LinkInvalid if it was not signed here, LinkExpired if late."""
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
