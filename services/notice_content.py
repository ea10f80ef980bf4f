"""Rendering a notice once per recipient: the email's text and HTML (``templates/email``), and
the data a webhook carries; amounts formatted for the currency, deadlines in the engagement's
time zone."""

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Engagement, Evidence, Milestone, Notification, WebhookEndpoint, new_id
from domain.money import format_minor

if TYPE_CHECKING:
    from services.notices import Notice


class Channel(StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"


# Notices whose point is what silence does: they say it even without a signed link.
WARNS_OF_SILENCE = frozenset({"deemed_warning"})

DEADLINE_NAMES = {
    "reminder": "Reminder",
    "escalation": "Escalation",
    "deemed_warning": "Deemed-acceptance warning",
    "deemed_acceptance": "Deemed acceptance",
    "expiry": "Expiry",
}


ENVIRONMENT = Environment(
    loader=PackageLoader("templates", "email"),
    autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
    keep_trailing_newline=True,
)


class Content:
    """The notice rendered once for every recipient: facts, amounts, deadlines in local time."""

    def __init__(self, session: Session, notice: "Notice", engagement: Engagement) -> None:
        self.notice = notice
        milestone = session.get(Milestone, notice.milestone_id) if notice.milestone_id else None
        self.zone = (engagement.approval.get("calendar") or {}).get("timezone") or "UTC"
        evidence = (
            session.scalars(
                select(Evidence).where(Evidence.id.in_(notice.evidence_ids)).order_by(Evidence.id)
            ).all()
            if notice.evidence_ids
            else []
        )
        self.data: dict[str, Any] = {
            "run_id": notice.run_id,
            "run_kind": notice.run_kind,
            "engagement_id": engagement.id,
            "engagement": engagement.name,
            "milestone_id": notice.milestone_id,
            "milestone": f"{milestone.name} ({milestone.key})" if milestone else None,
            "headline": notice.headline,
            "detail": notice.detail,
            "role": notice.role or None,
            "currency": engagement.currency,
            "amounts_minor": dict(notice.amounts),
            "criteria": notice.criteria,
            "evidence": [
                {"id": e.id, "name": e.filename, "sha256": e.sha256, "size": e.size}
                for e in evidence
            ],
            "deadlines": notice.deadlines,
            "timezone": self.zone,
        }

    def _if_silent(self, role: str) -> str | None:
        """What silence does: a client role's silence accepts; any other role's lets it expire."""
        deadlines = self.notice.deadlines
        if role in self.notice.silence_accepts and "deemed_acceptance" in deadlines:
            when = self.local(deadlines["deemed_acceptance"])
            return f"If you do nothing, this is deemed accepted on {when}."
        if "expiry" in deadlines:
            return (
                f"If nobody decides for {role}, this expires on {self.local(deadlines['expiry'])}."
            )
        return None

    def local(self, instant: str) -> str:
        moment = datetime.fromisoformat(instant).astimezone(ZoneInfo(self.zone))
        return moment.strftime("%a %d %b %Y, %H:%M %Z")

    def email(
        self, role: str, recipient_id: str, address: str | None, link: str | None
    ) -> Notification:
        row = self._row(Channel.EMAIL, role, recipient_id, address)
        currency = self.data["currency"]
        deadlines = self.notice.deadlines
        context = {
            **self.data,
            "role": role,
            "link": link,
            "link_expires": self.local(deadlines["expiry"]) if link else None,
            "message_id": row.message_id,
            "amounts": [(label, format_minor(v, currency)) for label, v in self.notice.amounts],
            "criteria": [{**c, "verdict": _verdict(c.get("passed"))} for c in self.notice.criteria],
            "deadlines": [
                (DEADLINE_NAMES.get(kind, kind), self.local(at)) for kind, at in deadlines.items()
            ],
            "if_silent": self._if_silent(role)
            if link or self.notice.kind in WARNS_OF_SILENCE
            else None,
        }
        row.subject = f"[Tollgate] {self.notice.headline}"[:300]
        row.body_text = ENVIRONMENT.get_template("notice.txt.j2").render(context)
        row.body_html = ENVIRONMENT.get_template("notice.html.j2").render(context)
        return row

    def webhook(self, endpoint: WebhookEndpoint) -> Notification:
        row = self._row(Channel.WEBHOOK, self.notice.role, endpoint.id, endpoint.url)
        row.subject = self.notice.headline[:300]
        return row

    def _row(
        self, channel: Channel, role: str, recipient_id: str, address: str | None
    ) -> Notification:
        return Notification(
            run_id=self.notice.run_id,
            kind=str(self.notice.kind),
            role=role,
            recipient_id=recipient_id,
            channel=str(channel),
            address=address,
            payload=self.data,
            message_id=new_id("msg"),
        )


def _verdict(passed: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: "for the approvers"}[passed]
