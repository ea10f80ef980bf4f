"""A source's delivery log: each verified delivery once, with the answer it got, and its raw
payload kept as content-addressed evidence when it is accepted."""

import hashlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.models import Evidence, EvidenceBlob, new_id
from db.sources import DeliveryOutcome, InboundSource, SourceDelivery
from db.types import utcnow
from domain.times import iso
from services.callers import Caller


def source_caller(source: InboundSource) -> Caller:
    """Who a delivery acts as: an integration of the source's engagement, named by the source."""
    return Caller("integration", source.id, source.engagement_id)


def find(session: Session, source_id: str, webhook_id: str) -> SourceDelivery | None:
    return session.scalar(
        select(SourceDelivery).where(
            SourceDelivery.source_id == source_id, SourceDelivery.webhook_id == webhook_id
        )
    )


def record(
    session: Session,
    source_id: str,
    webhook_id: str,
    payload: bytes,
    outcome: DeliveryOutcome,
    status_code: int,
    response: dict[str, Any],
    reason: str | None = None,
    run_id: str | None = None,
) -> SourceDelivery:
    """Log the delivery and its answer; a concurrent twin logged first wins, and its row is
    returned (so both answer alike)."""
    delivery = SourceDelivery(
        id=new_id("dlv"),
        source_id=source_id,
        webhook_id=webhook_id,
        received_at=utcnow(),
        outcome=outcome,
        status_code=status_code,
        reason=reason,
        response=response,
        run_id=run_id,
        payload_sha256=hashlib.sha256(payload).hexdigest(),
    )
    session.add(delivery)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        twin = find(session, source_id, webhook_id)
        if twin is None:
            raise
        return twin
    return delivery


def keep_payload(session: Session, source: InboundSource, webhook_id: str, payload: bytes) -> str:
    """The raw payload as evidence uploaded by the source (not committed: it is kept only if the
    trigger is accepted). The same payload again is the same evidence, so a trigger replayed
    under a mapped idempotency key has the same body, and replays."""
    sha256 = hashlib.sha256(payload).hexdigest()
    actor = source_caller(source).actor
    existing = session.scalar(
        select(Evidence.id).where(Evidence.sha256 == sha256, Evidence.uploaded_by == actor)
    )
    if existing is not None:
        return existing
    if session.get(EvidenceBlob, sha256) is None:
        session.add(EvidenceBlob(sha256=sha256, size=len(payload), content=payload))
        session.flush()  # the blob before the row that refers to it
    evidence = Evidence(
        id=new_id("evd"),
        sha256=sha256,
        size=len(payload),
        filename=f"{source.name} delivery {webhook_id}.json"[:255],
        content_type="application/json",
        description=f"Raw payload of delivery {webhook_id} to source {source.id}",
        uploaded_by=actor,
    )
    session.add(evidence)
    session.flush()
    return evidence.id


def delivery_view(delivery: SourceDelivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "webhook_id": delivery.webhook_id,
        "received_at": iso(delivery.received_at),
        "outcome": delivery.outcome,
        "status_code": delivery.status_code,
        "reason": delivery.reason,
        "response": delivery.response,
        "run_id": delivery.run_id,
        "payload_sha256": delivery.payload_sha256,
    }
