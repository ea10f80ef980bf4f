"""Composing notices: one outbox row per recipient and webhook endpoint, in the caller's
transaction, so a notice exists exactly when the state change it tells about does.

Emails are rendered when written (``templates/email``), so every retry sends the same message;
webhook rows carry the event's data, wrapped and signed when sent (``services.delivery``).
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from db.models import Engagement, Notification, Principal, Run, WebhookEndpoint
from services.approval_links import Grant, approval_url
from services.notice_content import Content
from workflows.contracts import Deadline, Subject

OPERATORS = "operators"


class NoticeKind(StrEnum):
    """The events a notice tells about; webhook endpoints subscribe to them by these names."""

    APPROVAL_REQUESTED = "approval_requested"
    REMINDER = "reminder"
    ESCALATION = "escalation"
    DEEMED_WARNING = "deemed_warning"
    DECISION_RECORDED = "decision_recorded"
    RUN_BILLED = "run_billed"
    RUN_REJECTED = "run_rejected"
    RUN_EXPIRED = "run_expired"
    RUN_FAILED = "run_failed"
    # About documents (services/document_notices.py): the outbox row names the document.
    INVOICE_FINALIZED = "invoice_finalized"
    CLAWBACK_ISSUED = "clawback_issued"
    # A time-and-materials cap (services/tm_cap_notices.py): 80 % of it billed, all of it.
    TM_CAP_80 = "tm_cap_80"
    TM_CAP_REACHED = "tm_cap_reached"


# Notices that ask the recipient to decide carry their signed approval link.
ASKS_TO_DECIDE = frozenset(
    {NoticeKind.APPROVAL_REQUESTED, NoticeKind.REMINDER, NoticeKind.DEEMED_WARNING}
)
ASKS_TO_DECIDE_AFTER_ESCALATION = frozenset({NoticeKind.ESCALATION})
# The end a run's closing stage announces.
ENDS = {
    "billed": NoticeKind.RUN_BILLED,
    "rejected": NoticeKind.RUN_REJECTED,
    "expired": NoticeKind.RUN_EXPIRED,
    "failed": NoticeKind.RUN_FAILED,
}


@dataclass(frozen=True)
class LinkSigning:
    """What approval links need: where the API is reached and the key that signs them."""

    public_url: str
    secret: str


@dataclass(frozen=True)
class Recipient:
    principal_id: str
    role: str


@dataclass
class Notice:
    """What happened to a run, in the words and figures a person needs to act on it."""

    kind: NoticeKind
    run_id: str
    run_kind: str  # milestone | closeout | change_order
    engagement_id: str
    headline: str
    milestone_id: str | None = None
    detail: str | None = None
    # (label, amount in minor units), in the engagement's currency.
    amounts: list[tuple[str, int]] = field(default_factory=list)
    # {"id", "passed": bool | None, "detail"}
    criteria: list[dict[str, Any]] = field(default_factory=list)
    evidence_ids: list[str] = field(default_factory=list)
    # {kind: RFC 3339 instant}: reminder, escalation, deemed_warning, deemed_acceptance, expiry.
    deadlines: dict[str, str] = field(default_factory=dict)
    role: str = ""  # the role a decision notice is about
    # Roles whose silence accepts (the policy's client roles): their emails say when.
    silence_accepts: list[str] = field(default_factory=list)


def recipients(roles: dict[str, list[str]], only: Iterable[str] | None = None) -> list[Recipient]:
    """One recipient per (role, principal) of ``roles``, limited to the roles in ``only``."""
    wanted = set(roles if only is None else only)
    return [Recipient(p, role) for role, ids in roles.items() if role in wanted for p in ids]


def approval_requested(
    subject: Subject,
    run_kind: str,
    deadlines: list[Deadline],
    *,
    amounts: list[tuple[str, int]] | None = None,
    criteria: list[dict[str, Any]] | None = None,
    evidence_ids: list[str] | None = None,
    detail: str | None = None,
) -> Notice:
    return Notice(
        kind=NoticeKind.APPROVAL_REQUESTED,
        run_id=subject.run_id,
        run_kind=run_kind,
        engagement_id=subject.engagement_id,
        milestone_id=subject.milestone_id,
        headline=f"Approval requested: {subject.title}",
        detail=detail,
        amounts=amounts or [],
        criteria=criteria or [],
        evidence_ids=evidence_ids or [],
        deadlines={d.kind: d.at for d in deadlines},
        silence_accepts=subject.policy.client_roles,
    )


def follow_up(
    session: Session,
    kind: NoticeKind,
    subject: Subject,
    headline: str,
    *,
    role: str = "",
    detail: str | None = None,
) -> Notice:
    """A later notice about a run, with the facts its approval request carried (none when the
    run never asked for approval, e.g. an automatic acceptance)."""
    run = session.get_one(Run, subject.run_id)
    request = session.scalar(
        select(Notification.payload)
        .where(
            Notification.run_id == subject.run_id,
            Notification.kind == NoticeKind.APPROVAL_REQUESTED,
        )
        .order_by(Notification.id)
        .limit(1)
    )
    facts = request or {}
    return Notice(
        kind=kind,
        run_id=subject.run_id,
        run_kind=run.kind,
        engagement_id=subject.engagement_id,
        milestone_id=subject.milestone_id,
        headline=headline,
        detail=detail,
        amounts=list((facts.get("amounts_minor") or {}).items()),
        criteria=facts.get("criteria") or [],
        evidence_ids=[e["id"] for e in facts.get("evidence") or []],
        deadlines=facts.get("deadlines") or {},
        role=role,
        silence_accepts=subject.policy.client_roles,
    )


def queue(
    session: Session,
    notice: Notice,
    to: list[Recipient],
    links: LinkSigning | None = None,
    *,
    operators: bool = False,
) -> list[int]:
    """Write the notice's rows (emails to ``to`` and to operators if asked, posts to every
    subscribed endpoint); rows already written by an earlier try are kept. Returns new row ids."""
    engagement = session.get_one(Engagement, notice.engagement_id)
    content = Content(session, notice, engagement)
    rows: list[Notification] = []
    for recipient in to:
        principal = session.get(Principal, recipient.principal_id)
        if principal is None:
            continue
        link = _link(notice, recipient, links)
        rows.append(content.email(recipient.role, principal.id, principal.email, link))
    if operators:
        rows.append(content.email("operator", OPERATORS, None, None))
    for endpoint in subscribed(session, notice.kind, [engagement.id], [engagement.customer_id]):
        rows.append(content.webhook(endpoint))
    return write_new(session, rows)


def write_new(session: Session, rows: list[Notification]) -> list[int]:
    """Add the rows an earlier try did not write (by run, kind, role and recipient); their ids."""
    written = _written(session, rows)
    added = [
        row for row in rows if (row.run_id, row.kind, row.role, row.recipient_id) not in written
    ]
    session.add_all(added)
    session.flush()
    return [row.id for row in added]


def _link(notice: Notice, recipient: Recipient, links: LinkSigning | None) -> str | None:
    expiry = notice.deadlines.get("expiry")
    if links is None or not links.secret or expiry is None:
        return None
    if notice.kind not in ASKS_TO_DECIDE | ASKS_TO_DECIDE_AFTER_ESCALATION:
        return None
    grant = Grant(
        notice.run_id, recipient.role, recipient.principal_id, datetime.fromisoformat(expiry)
    )
    return approval_url(links.public_url, links.secret, grant)


def subscribed(
    session: Session, kind: str, engagement_ids: Iterable[str], customer_ids: Iterable[str]
) -> list[WebhookEndpoint]:
    """Active endpoints subscribed to ``kind`` on any of the engagements or customers, each once."""
    candidates = session.scalars(
        select(WebhookEndpoint)
        .where(
            WebhookEndpoint.active.is_(True),
            or_(
                WebhookEndpoint.engagement_id.in_(set(engagement_ids)),
                WebhookEndpoint.customer_id.in_(set(customer_ids)),
            ),
        )
        .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    ).all()
    return [e for e in candidates if kind in e.events]


def _written(session: Session, rows: list[Notification]) -> set[tuple[str, ...]]:
    """Which of the rows' (run, kind, role, recipient) are already written: one query."""
    if not rows:
        return set()
    keys = {(row.run_id, row.kind, row.role, row.recipient_id) for row in rows}
    found = session.execute(
        select(
            Notification.run_id, Notification.kind, Notification.role, Notification.recipient_id
        ).where(
            Notification.run_id.in_({k[0] for k in keys}),
            Notification.kind.in_({k[1] for k in keys}),
        )
    ).all()
    return {tuple(f) for f in found} & keys
