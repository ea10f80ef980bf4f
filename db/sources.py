"""Inbound sources (signed webhooks from other systems) and their delivery log."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from db.models import Base
from db.types import utcnow


class DeliveryOutcome(StrEnum):
    ACCEPTED = "accepted"  # a trigger was accepted (or replayed) and its run started
    IGNORED = "ignored"  # the mapping's ``when`` said this payload is not a trigger
    REFUSED = "refused"  # the mapping failed, or the trigger was refused


class InboundSource(Base):
    """Where an external system posts signed deliveries for one engagement.

    The signing secrets are kept encrypted (``services.source_secrets``): verifying a Standard
    Webhooks signature needs the secret itself, so a hash would not do. After a rotation the
    previous secret keeps verifying until ``previous_valid_until``."""

    __tablename__ = "inbound_sources"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    engagement_id: Mapped[str] = mapped_column(ForeignKey("engagements.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # mapping | generic | alertmanager | grafana
    kind: Mapped[str] = mapped_column(String(16))
    # The preset's options as given (empty for a hand-written mapping).
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The JMESPath mapping every delivery goes through (a preset's is built from its options).
    mapping: Mapped[dict[str, Any]] = mapped_column()
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    previous_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    previous_valid_until: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deactivated_at: Mapped[datetime | None] = mapped_column()


class SourceDelivery(Base):
    """One verified delivery and the answer it got: the same ``webhook-id`` again gets that
    answer again (status and body), and nothing new happens."""

    __tablename__ = "source_deliveries"
    __table_args__ = (UniqueConstraint("source_id", "webhook_id"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    source_id: Mapped[str] = mapped_column(ForeignKey("inbound_sources.id"), index=True)
    webhook_id: Mapped[str] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    outcome: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    run_id: Mapped[str | None] = mapped_column(String(120))
    payload_sha256: Mapped[str] = mapped_column(String(64))
