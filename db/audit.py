"""The audit trail: append-only events, hash-chained per engagement so tampering shows.

Each event's hash covers its own content and the previous event's hash, so altering,
deleting or reordering any row breaks every hash after it.
"""

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event as orm_event
from sqlalchemy import select
from sqlalchemy.orm import Session, SessionTransaction

from db.models import AuditEvent, Engagement, Evidence
from db.types import utcnow

GENESIS = "0" * 64
# session.info key: engagement id → (seq, hash) of the last event this transaction appended.
HEADS = "audit_heads"


def event_hash(event: AuditEvent) -> str:
    body = {
        "engagement_id": event.engagement_id,
        "seq": event.seq,
        "at": event.at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": event.actor,
        "kind": event.kind,
        "milestone_id": event.milestone_id,
        "run_id": event.run_id,
        "data": event.data,
        "evidence": event.evidence,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{event.prev_hash}:{canonical}".encode()).hexdigest()


def evidence_refs(session: Session, evidence_ids: Sequence[str]) -> list[dict[str, str]]:
    """``[{id, sha256}]`` for evidence ids, in the order given."""
    if not evidence_ids:
        return []
    rows = session.execute(
        select(Evidence.id, Evidence.sha256).where(Evidence.id.in_(evidence_ids))
    ).all()
    by_id = {row.id: row.sha256 for row in rows}
    return [{"id": eid, "sha256": by_id[eid]} for eid in evidence_ids if eid in by_id]


def append_event(
    session: Session,
    *,
    engagement_id: str,
    actor: str,
    kind: str,
    data: dict[str, Any] | None = None,
    milestone_id: str | None = None,
    run_id: str | None = None,
    evidence: list[dict[str, str]] | None = None,
    at: datetime | None = None,
    dedupe_key: str | None = None,
) -> AuditEvent:
    """Append one event to the engagement's chain, or return the one already appended under
    ``dedupe_key`` (activities are retried; their events must not be)."""
    if dedupe_key is not None:
        existing = session.scalar(select(AuditEvent).where(AuditEvent.dedupe_key == dedupe_key))
        if existing is not None:
            return existing
    seq, prev_hash = _head(session, engagement_id)
    event = AuditEvent(
        engagement_id=engagement_id,
        seq=seq + 1,
        at=at or utcnow(),
        actor=actor,
        kind=kind,
        milestone_id=milestone_id,
        run_id=run_id,
        data=data or {},
        evidence=evidence or [],
        prev_hash=prev_hash,
        dedupe_key=dedupe_key,
    )
    event.hash = event_hash(event)
    session.add(event)
    session.flush()
    _heads(session)[engagement_id] = (event.seq, event.hash)
    return event


def _head(session: Session, engagement_id: str) -> tuple[int, str]:
    """The chain's last (seq, hash). The first append of a transaction locks the engagement
    (PostgreSQL row lock; SQLite holds the write lock already) and reads it; the lock holds
    until the transaction ends, so later appends in it take the head they left behind."""
    known = _heads(session).get(engagement_id)
    if known is not None:
        return known
    session.execute(select(Engagement.id).where(Engagement.id == engagement_id).with_for_update())
    last = session.execute(
        select(AuditEvent.seq, AuditEvent.hash)
        .where(AuditEvent.engagement_id == engagement_id)
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    ).first()
    return (last.seq, last.hash) if last else (0, GENESIS)


def _heads(session: Session) -> dict[str, tuple[int, str]]:
    return session.info.setdefault(HEADS, {})


@orm_event.listens_for(Session, "after_transaction_create")
@orm_event.listens_for(Session, "after_transaction_end")
def _forget_heads(session: Session, transaction: SessionTransaction) -> None:
    """Heads are known only within one transaction and savepoint: a savepoint rolled back
    takes its appends with it, and a new transaction must lock again."""
    session.info.pop(HEADS, None)


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    events: int
    first_bad_seq: int | None


def verify_chain(session: Session, engagement_id: str) -> ChainCheck:
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.engagement_id == engagement_id).order_by(AuditEvent.seq)
    ).all()
    prev = GENESIS
    for expected_seq, event in enumerate(events, start=1):
        if event.seq != expected_seq or event.prev_hash != prev or event_hash(event) != event.hash:
            return ChainCheck(ok=False, events=len(events), first_bad_seq=event.seq)
        prev = event.hash
    return ChainCheck(ok=True, events=len(events), first_bad_seq=None)
