"""Inbound sources: registering one for an engagement, rotating its secret, deactivating it, and
finding the secrets a delivery must be signed with. Each change is audited on the engagement."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.audit import append_event
from db.models import Milestone, new_id
from db.sources import InboundSource
from db.types import utcnow
from domain.times import iso
from services import source_secrets
from services.access import load_engagement
from services.callers import Caller
from services.errors import Problem, invalid, not_found
from services.mappings import fixed_milestone
from services.presets import SourceIn, SourceKind, build_mapping, options

MAX_OVERLAP_HOURS = 24 * 30


@dataclass(frozen=True)
class Issued:
    """A source and its signing secret, which is shown this once."""

    source: InboundSource
    secret: str


def register(
    session: Session, caller: Caller, engagement_id: str, body: SourceIn, link_secret: str
) -> Issued:
    engagement = load_engagement(session, engagement_id, caller)
    mapping = build_mapping(body)
    key = fixed_milestone(mapping)
    if key is not None and _milestone(session, engagement.id, key) is None:
        field = "mapping.milestone" if body.kind == SourceKind.MAPPING else "milestone"
        raise invalid(field, f"engagement {engagement.id} has no milestone {key!r}")
    secret = source_secrets.new_secret()
    source = InboundSource(
        id=new_id("src"),
        engagement_id=engagement.id,
        name=body.name,
        kind=body.kind,
        options=options(body),
        mapping=mapping.model_dump(mode="json", exclude_none=True),
        secret_encrypted=source_secrets.encrypt(link_secret, secret),
        created_at=utcnow(),
    )
    session.add(source)
    session.flush()
    _audit(session, source, caller, "source_created", {"name": source.name, "kind": source.kind})
    session.commit()
    return Issued(source, secret)


def rotate(
    session: Session, caller: Caller, source_id: str, overlap_hours: int, link_secret: str
) -> Issued:
    """A new secret; the current one keeps verifying for ``overlap_hours`` (0: not at all)."""
    source = active_source(session, source_id)
    now = utcnow()
    secret = source_secrets.new_secret()
    source.previous_secret_encrypted = source.secret_encrypted
    source.previous_valid_until = now + timedelta(hours=overlap_hours)
    source.secret_encrypted = source_secrets.encrypt(link_secret, secret)
    _audit(
        session,
        source,
        caller,
        "source_secret_rotated",
        {"previous_valid_until": iso(source.previous_valid_until)},
    )
    session.commit()
    return Issued(source, secret)


def deactivate(session: Session, caller: Caller, source_id: str) -> InboundSource:
    """No delivery is taken any more (410); deactivating twice changes nothing."""
    source = session.get(InboundSource, source_id)
    if source is None:
        raise not_found("Source", source_id)
    if source.active:
        source.active = False
        source.deactivated_at = utcnow()
        _audit(session, source, caller, "source_deactivated", {})
        session.commit()
    return source


def active_source(session: Session, source_id: str) -> InboundSource:
    source = session.get(InboundSource, source_id)
    if source is None:
        raise not_found("Source", source_id)
    if not source.active:
        raise Problem(
            410,
            "source-deactivated",
            "Source deactivated",
            f"Source {source.id} was deactivated on {iso(source.deactivated_at)}; "
            "it takes no deliveries.",
        )
    return source


def signing_secrets(source: InboundSource, link_secret: str) -> source_secrets.Secrets:
    previous = source.previous_secret_encrypted
    return source_secrets.Secrets(
        current=source_secrets.decrypt(link_secret, source.secret_encrypted),
        previous=source_secrets.decrypt(link_secret, previous) if previous else None,
        previous_valid_until=source.previous_valid_until,
    )


def milestone_id(session: Session, source: InboundSource, key: str) -> str | None:
    milestone = _milestone(session, source.engagement_id, key)
    return milestone.id if milestone else None


def source_view(source: InboundSource, url: str) -> dict[str, Any]:
    rotating = source.previous_valid_until
    return {
        "id": source.id,
        "engagement_id": source.engagement_id,
        "name": source.name,
        "kind": source.kind,
        "options": source.options,
        "mapping": source.mapping,
        "url": url,
        "active": source.active,
        "previous_secret_valid_until": iso(rotating) if rotating and rotating > utcnow() else None,
        "created_at": iso(source.created_at),
        "deactivated_at": iso(source.deactivated_at),
    }


def _milestone(session: Session, engagement_id: str, key: str) -> Milestone | None:
    return session.scalar(
        select(Milestone).where(Milestone.engagement_id == engagement_id, Milestone.key == key)
    )


def _audit(
    session: Session, source: InboundSource, caller: Caller, kind: str, data: dict[str, Any]
) -> None:
    append_event(
        session,
        engagement_id=source.engagement_id,
        actor=caller.actor,
        kind=kind,
        data={"source_id": source.id, **data},
    )
