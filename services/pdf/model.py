"""What every document shows besides its own figures: who issues it, the evidence it cites with
the files' sha256, and where in each engagement's audit chain it is anchored."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from config import Settings
from db.models import AuditEvent, Engagement, Evidence


@dataclass(frozen=True)
class Issuer:
    name: str
    address: list[str]
    tax_id: str
    email: str


@dataclass(frozen=True)
class DocumentContext:
    """What the settings contribute to a document."""

    issuer: Issuer
    public_url: str  # verify links start with it

    @classmethod
    def of(cls, settings: Settings) -> "DocumentContext":
        address = [line.strip() for line in settings.issuer_address.splitlines() if line.strip()]
        issuer = Issuer(
            settings.issuer_name, address, settings.issuer_tax_id, settings.issuer_email
        )
        return cls(issuer, settings.public_url)

    def verify_url(self, engagement_id: str) -> str:
        return f"{self.public_url}/v1/engagements/{engagement_id}/audit/verify"


@dataclass(frozen=True)
class EvidenceItem:
    id: str
    filename: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Anchor:
    """An audit event a document stands on: anyone with access can find it by its hash in the
    engagement's trail and check the whole chain at ``verify_url``."""

    engagement_id: str
    engagement_name: str
    seq: int
    kind: str
    hash: str
    verify_url: str


def evidence_items(session: Session, evidence_ids: Iterable[str]) -> list[EvidenceItem]:
    """The cited evidence, in the order first cited, each once."""
    ids = list(dict.fromkeys(evidence_ids))
    if not ids:
        return []
    found = {e.id: e for e in session.scalars(select(Evidence).where(Evidence.id.in_(ids)))}
    return [EvidenceItem(e.id, e.filename, e.sha256, e.size) for i in ids if (e := found.get(i))]


def anchor(context: DocumentContext, engagement: Engagement, event: AuditEvent) -> Anchor:
    return Anchor(
        engagement.id,
        engagement.name,
        event.seq,
        event.kind,
        event.hash,
        context.verify_url(engagement.id),
    )


def chain_head(session: Session, engagement_id: str) -> AuditEvent | None:
    return session.scalar(
        select(AuditEvent)
        .where(AuditEvent.engagement_id == engagement_id)
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    )


def issue_event(session: Session, engagement_id: str, dedupe_prefix: str) -> AuditEvent | None:
    """The latest event an activity appended under a dedupe key starting with the prefix:
    the event that issued a document (its hash was the chain's head then)."""
    return session.scalar(
        select(AuditEvent)
        .where(
            AuditEvent.engagement_id == engagement_id,
            AuditEvent.dedupe_key.like(f"{_like_escaped(dedupe_prefix)}%", escape="\\"),
        )
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    )


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def local_time(moment: datetime, zone: ZoneInfo) -> str:
    """``2026-11-20 14:05 CET`` in the engagement's zone."""
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def engagement_zone(engagement: Engagement) -> ZoneInfo:
    return ZoneInfo((engagement.approval.get("calendar") or {}).get("timezone") or "UTC")


def engagements_by_id(session: Session, ids: Sequence[str]) -> dict[str, Engagement]:
    if not ids:
        return {}
    return {e.id: e for e in session.scalars(select(Engagement).where(Engagement.id.in_(ids)))}
