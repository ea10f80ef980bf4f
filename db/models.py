"""Typed SQLAlchemy models: money in BigInteger minor units, percents as decimal strings.

No model has a relationship(), so a flush orders its INSERTs by ``module.ClassName``, not by
foreign key: within this module that puts the rows written together in one flush parent first
(Customer before Invoice, Engagement before EngagementVersion, Run before RunSigner). A model
written in the same flush as its parent stays here, or the parent is flushed first."""

import secrets
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from db.types import UTCDateTime, utcnow
from domain.lifecycle import UNBILLED_ENDS

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Runs that hold their SLA period: every run of one, except those that ended without billing.
PERIOD_HELD = text(
    "period IS NOT NULL AND stage NOT IN ("
    + ", ".join(f"'{stage}'" for stage in sorted(UNBILLED_ENDS))
    + ")"
)


def new_id(prefix: str) -> str:
    """Readable, unguessable ids: ``eng_3f9a…`` tells an operator what they are looking at."""
    return f"{prefix}_{secrets.token_hex(10)}"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


class Principal(Base):
    __tablename__ = "principals"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class IntegrationToken(Base):
    __tablename__ = "integration_tokens"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    engagement_id: Mapped[str] = mapped_column(ForeignKey("engagements.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    external_ref: Mapped[str | None] = mapped_column(String(200))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Engagement(Base):
    """The contract; ``approval`` holds the validated sign-off policy (roles, timers, calendar)."""

    __tablename__ = "engagements"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    retention_percent: Mapped[str] = mapped_column(String(16), default="0")
    retention_release: Mapped[str] = mapped_column(String(32), default="on_final_signoff")
    retention_release_delay: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    approval: Mapped[dict[str, Any]] = mapped_column()
    # A span ({"business_days": 10} or {"duration": "P30D"}) from issue date to due date.
    payment_terms: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # active → closing (close-out awaiting sign-off) → closed; bumped by approved change orders.
    status: Mapped[str] = mapped_column(String(16), default="active")
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Milestone(Base):
    __tablename__ = "milestones"
    __table_args__ = (UniqueConstraint("engagement_id", "key"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    engagement_id: Mapped[str] = mapped_column(ForeignKey("engagements.id"), index=True)
    key: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)
    fee_minor: Mapped[int] = mapped_column(BigInteger)
    # standard | bonus | success_fee
    kind: Mapped[str] = mapped_column(String(16), default="standard")
    # Bonus fee defined as a percent of another milestone's fee: {"milestone": key, "percent": "5"}.
    fee_basis: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # After this instant a trigger can no longer qualify (bonus "by launch date").
    deadline: Mapped[datetime | None] = mapped_column()
    # {"window": span, "kpi": {metric, op, threshold}, "percent": "100"}
    clawback: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # {"percent", "metric", "baseline", "cap_minor", "floor_minor"}
    success_fee: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    trigger_mode: Mapped[str] = mapped_column(String(16))
    allow_partial: Mapped[bool] = mapped_column(Boolean, default=False)
    criteria: Mapped[list[Any]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(24), default="pending")
    accepted_percent: Mapped[str] = mapped_column(String(16), default="0")
    billed_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    retention_held_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    accepted_kpis: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Set atomically when a trigger opens a run, cleared when the run closes: at most one open run.
    # Never set on a repeatable milestone: each filing is its own run, several may be open.
    open_run_id: Mapped[str | None] = mapped_column(String(120))
    # Billed per accepted filing (fee_minor is then the fee per filing), never closed by one.
    repeatable: Mapped[bool] = mapped_column(Boolean, default=False)
    # {"required": bool, "pattern": str | None}: triggers carry a regulator's confirmation id.
    confirmation: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # monthly | weekly | quarterly: an SLA milestone bills fee_minor once per such period.
    sla_period: Mapped[str | None] = mapped_column(String(16))
    # An SLA period not met is credited this much on the next invoice (db.sla_periods).
    service_credit_minor: Mapped[int | None] = mapped_column(BigInteger)
    # Days after an SLA period ends that late reports still count before it is judged.
    report_grace_days: Mapped[int | None] = mapped_column(Integer)
    # NULL only for milestones created before revision 0010 (backfilled from the engagement).
    created_at: Mapped[datetime | None] = mapped_column(default=utcnow)


class MilestoneDependency(Base):
    __tablename__ = "milestone_dependencies"
    milestone_id: Mapped[str] = mapped_column(ForeignKey("milestones.id"), primary_key=True)
    depends_on_id: Mapped[str] = mapped_column(ForeignKey("milestones.id"), primary_key=True)
    kpi: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class EvidenceBlob(Base):
    """Content-addressed bytes: the same file uploaded twice is stored once."""

    __tablename__ = "evidence_blobs"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    content: Mapped[bytes] = mapped_column(LargeBinary)


class Evidence(Base):
    __tablename__ = "evidence"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("evidence_blobs.sha256"), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    uploaded_by: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EvidenceLink(Base):
    """Which engagements use a piece of evidence: their principals may read it."""

    __tablename__ = "evidence_links"
    evidence_id: Mapped[str] = mapped_column(ForeignKey("evidence.id"), primary_key=True)
    engagement_id: Mapped[str] = mapped_column(ForeignKey("engagements.id"), primary_key=True)


class Trigger(Base):
    __tablename__ = "triggers"
    __table_args__ = (UniqueConstraint("milestone_id", "idempotency_key"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    milestone_id: Mapped[str] = mapped_column(ForeignKey("milestones.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(255))
    body_hash: Mapped[str] = mapped_column(String(64))
    body: Mapped[dict[str, Any]] = mapped_column()
    run_id: Mapped[str] = mapped_column(String(120), unique=True)
    actor: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Run(Base):
    """One sign-off workflow; ``id`` is the workflow id.

    ``kind`` is ``milestone`` (a trigger's run), ``closeout`` or ``change_order``: all three
    collect decisions the same way, through ``POST /v1/runs/{id}/decisions``.
    """

    __tablename__ = "runs"
    # A regulator confirms a filing once: two runs of one engagement never hold the same id.
    # NULLs are distinct in SQLite and PostgreSQL alike, so runs without one never collide.
    __table_args__ = (
        Index(
            "uq_runs_engagement_id_confirmation_held",
            "engagement_id",
            "confirmation_held",
            unique=True,
        ),
        # An SLA period bills once: one run per (milestone, period) while it is open or billed.
        # The database decides from the stage, so no run end has to remember to release it.
        Index(
            "uq_runs_milestone_id_period_open_or_billed",
            "milestone_id",
            "period",
            unique=True,
            sqlite_where=PERIOD_HELD,
            postgresql_where=PERIOD_HELD,
        ),
        # The operators' list (GET /v1/runs, `tollgate runs list`) pages in this order, on its
        # own or within a stage: a page reads the index, not every run ever recorded.
        Index("ix_runs_created_at_id", "created_at", "id"),
        Index("ix_runs_stage_created_at_id", "stage", "created_at", "id"),
    )
    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="milestone")
    milestone_id: Mapped[str | None] = mapped_column(ForeignKey("milestones.id"), index=True)
    engagement_id: Mapped[str] = mapped_column(ForeignKey("engagements.id"), index=True)
    trigger_id: Mapped[str | None] = mapped_column(ForeignKey("triggers.id"))
    # The run's input as started: policy, fee and terms frozen at trigger time.
    snapshot: Mapped[dict[str, Any]] = mapped_column()
    stage: Mapped[str] = mapped_column(String(32), default="received")
    outcome: Mapped[str | None] = mapped_column(String(32))
    outcome_detail: Mapped[str | None] = mapped_column(Text)
    gross_minor: Mapped[int | None] = mapped_column(BigInteger)
    retention_minor: Mapped[int | None] = mapped_column(BigInteger)
    net_minor: Mapped[int | None] = mapped_column(BigInteger)
    invoice_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column()
    # The regulator's confirmation id the trigger carried, kept for good; ``confirmation_held``
    # is the same id while the run holds it (released when the run is cancelled or fails).
    confirmation_id: Mapped[str | None] = mapped_column(String(200))
    confirmation_held: Mapped[str | None] = mapped_column(String(200))
    # The SLA period (``2026-11``) a run of an SLA milestone bills.
    period: Mapped[str | None] = mapped_column(String(16))


class RunSigner(Base):
    """A principal the run's frozen policy names for a role, as its approver or as its escalation
    contact: an approver's waiting runs are found by this index, not by reading every run."""

    __tablename__ = "run_signers"
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    principal_id: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(100), primary_key=True)
    capacity: Mapped[str] = mapped_column(String(16), primary_key=True)


class Decision(Base):
    __tablename__ = "decisions"
    __table_args__ = (UniqueConstraint("run_id", "role"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    role: Mapped[str] = mapped_column(String(100))
    principal_id: Mapped[str | None] = mapped_column(String(40))
    decision: Mapped[str] = mapped_column(String(16))
    via: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str | None] = mapped_column(Text)
    evidence_ids: Mapped[list[Any]] = mapped_column(default=list)
    at: Mapped[datetime] = mapped_column()


class Invoice(Base):
    __tablename__ = "invoices"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    number: Mapped[str | None] = mapped_column(String(40), unique=True)
    # "<customer>:<currency>" while draft, NULL once finalized: one open draft per pair.
    draft_key: Mapped[str | None] = mapped_column(String(60), unique=True)
    total_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finalized_at: Mapped[datetime | None] = mapped_column()
    issued_on: Mapped[date | None] = mapped_column()
    due_on: Mapped[date | None] = mapped_column()
    # The sha256 of the PDF issued when it was finalized (see IssuedDocument).
    document_sha256: Mapped[str | None] = mapped_column(String(64))


class InvoiceLine(Base):
    __tablename__ = "invoice_lines"
    __table_args__ = (UniqueConstraint("run_id", "kind"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    milestone_id: Mapped[str | None] = mapped_column(ForeignKey("milestones.id"))
    run_id: Mapped[str | None] = mapped_column(String(120))
    evidence: Mapped[list[Any]] = mapped_column(default=list)
    # How the amount was computed, when it is not simply the fee (success fees, clawbacks).
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RetentionEntry(Base):
    """Escrow ledger: ``held`` is positive, releases negative; the balance is the sum."""

    __tablename__ = "retention_ledger"
    __table_args__ = (UniqueConstraint("run_id", "kind"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    engagement_id: Mapped[str] = mapped_column(ForeignKey("engagements.id"), index=True)
    milestone_id: Mapped[str | None] = mapped_column(ForeignKey("milestones.id"))
    run_id: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(16))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    """Append-only, hash-chained per engagement (see db/audit.py)."""

    __tablename__ = "audit_events"
    __table_args__ = (UniqueConstraint("engagement_id", "seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    engagement_id: Mapped[str] = mapped_column(ForeignKey("engagements.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column()
    actor: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(64))
    milestone_id: Mapped[str | None] = mapped_column(String(40), index=True)
    run_id: Mapped[str | None] = mapped_column(String(120))
    data: Mapped[dict[str, Any]] = mapped_column()
    evidence: Mapped[list[Any]] = mapped_column()
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # Lets a retried activity append "the same" event exactly once.
    dedupe_key: Mapped[str | None] = mapped_column(String(300), unique=True)


class Notification(Base):
    """One notice to one recipient (an email address or a webhook endpoint), written in the
    transaction of the state change it tells about and delivered by ``DeliverNotification``.

    ``run_id`` names what the notice is about (a run, or an invoice or credit note); ``kind`` is
    the event (``approval_requested``, ``reminder``, …, see ``services.notices.NoticeKind``).
    """

    __tablename__ = "notification_outbox"
    __table_args__ = (UniqueConstraint("run_id", "kind", "role", "recipient_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(120), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(100))
    # A principal's id, a webhook endpoint's id, or "operators".
    recipient_id: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column()
    # pending → delivered | dead (services.delivery.DeliveryStatus)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    channel: Mapped[str] = mapped_column(String(16), default="email")  # email | webhook
    # The email address or the endpoint's URL; NULL for operators (read from settings).
    address: Mapped[str | None] = mapped_column(String(2048))
    subject: Mapped[str] = mapped_column(String(300), default="")
    body_text: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str] = mapped_column(Text, default="")
    # The Standard Webhooks ``webhook-id`` (and the email's Message-ID): stable across retries.
    message_id: Mapped[str] = mapped_column(String(64), default=lambda: new_id("msg"), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column()


class DocumentSequence(Base):
    """Gapless numbering: one row per issuer series and year, incremented under a row lock."""

    __tablename__ = "document_sequences"
    series: Mapped[str] = mapped_column(String(40), primary_key=True)  # "TG" or "TG-CN"
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class CreditNote(Base):
    """A numbered credit against a finalized invoice; its lines are negative."""

    __tablename__ = "credit_notes"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"), index=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    number: Mapped[str] = mapped_column(String(40), unique=True)
    reason: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))  # manual | clawback
    total_minor: Mapped[int] = mapped_column(BigInteger)
    # Makes issuing idempotent: the request's Idempotency-Key or the clawback watch's id.
    dedupe_key: Mapped[str] = mapped_column(String(300), unique=True)
    actor: Mapped[str] = mapped_column(String(120))
    issued_at: Mapped[datetime] = mapped_column()
    document_sha256: Mapped[str | None] = mapped_column(String(64))  # its issued PDF's


class IssuedDocument(Base):
    """The PDF of an invoice or credit note as issued, byte for byte: what the customer was
    sent, served again as it was, and found by its sha256 when someone asks whether a file is
    the one issued."""

    __tablename__ = "issued_documents"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # invoice | credit_note
    document_id: Mapped[str] = mapped_column(String(40), unique=True)
    number: Mapped[str] = mapped_column(String(40))
    filename: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    issued_at: Mapped[datetime] = mapped_column()


class CreditNoteLine(Base):
    __tablename__ = "credit_note_lines"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    credit_note_id: Mapped[str] = mapped_column(ForeignKey("credit_notes.id"), index=True)
    invoice_line_id: Mapped[str] = mapped_column(ForeignKey("invoice_lines.id"), index=True)
    description: Mapped[str] = mapped_column(Text)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class EngagementVersion(Base):
    """The engagement as it stood at each version: 1 at creation, +1 per applied change order."""

    __tablename__ = "engagement_versions"
    engagement_id: Mapped[str] = mapped_column(ForeignKey("engagements.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    snapshot: Mapped[dict[str, Any]] = mapped_column()
    change_order_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChangeOrder(Base):
    __tablename__ = "change_orders"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    engagement_id: Mapped[str] = mapped_column(ForeignKey("engagements.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    changes: Mapped[dict[str, Any]] = mapped_column()
    # proposed → applied | rejected | expired | conflicted
    status: Mapped[str] = mapped_column(String(16), default="proposed")
    run_id: Mapped[str] = mapped_column(String(120), unique=True)
    base_version: Mapped[int] = mapped_column(Integer)
    version: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(Text)
    proposed_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column()


class KpiReport(Base):
    """A KPI report about a billed milestone, checked by its clawback watch."""

    __tablename__ = "kpi_reports"
    __table_args__ = (UniqueConstraint("milestone_id", "idempotency_key"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    milestone_id: Mapped[str] = mapped_column(ForeignKey("milestones.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(255))
    body_hash: Mapped[str] = mapped_column(String(64))
    body: Mapped[dict[str, Any]] = mapped_column()
    watch_id: Mapped[str] = mapped_column(String(120))
    actor: Mapped[str] = mapped_column(String(120))
    # received → ok | breach | ignored, set by the watch's activity.
    outcome: Mapped[str] = mapped_column(String(16), default="received")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class NotificationAttempt(Base):
    """One try at delivering a notification: what happened and how long it took."""

    __tablename__ = "notification_attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notification_outbox.id"), index=True)
    at: Mapped[datetime] = mapped_column()
    outcome: Mapped[str] = mapped_column(String(16))  # delivered | failed
    response_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)


class WebhookEndpoint(Base):
    """Where an engagement's or a customer's events are posted, signed with ``secret``."""

    __tablename__ = "webhook_endpoints"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    engagement_id: Mapped[str | None] = mapped_column(ForeignKey("engagements.id"), index=True)
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[Any]] = mapped_column()
    # Kept as given (``whsec_…``): signing needs the secret itself, not a hash of it.
    secret: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
