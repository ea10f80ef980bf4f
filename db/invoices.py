"""Invoices and their lines, credit notes, the retention ledger, and the PDFs issued for them:
money in BigInteger minor units."""

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from db.models import Base
from db.types import utcnow


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
