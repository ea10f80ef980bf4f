"""Time and materials: an engagement's T&M terms, its time entries and its billing periods."""

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from db.models import Base
from db.types import utcnow


class PeriodStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class EntryRowKind(StrEnum):
    ENTRY = "entry"  # posted by a client (a correction is an entry too)
    REVERSAL = "reversal"  # negates one entry: a correction's or a DELETE's


class TimeEntryKind(StrEnum):
    """What an entry records (its row kind, entry or reversal, is ``EntryRowKind``)."""

    WORK = "work"  # hours at the rate card's rate
    DEPENDENCY_DELAY = "dependency_delay"  # business days of client-caused delay, advisory rate


class TimeTerms(Base):
    """The engagement's time-and-materials terms; no row: the engagement bills no time."""

    __tablename__ = "time_terms"
    engagement_id: Mapped[str] = mapped_column(ForeignKey("engagements.id"), primary_key=True)
    # [{role, rate_minor, effective_from (ISO date or null), people: {person: rate_minor}}]
    rate_card: Mapped[list[Any]] = mapped_column(JSON)
    not_to_exceed_minor: Mapped[int | None] = mapped_column(BigInteger)
    period_cap_minor: Mapped[int | None] = mapped_column(BigInteger)
    minimum_minor: Mapped[int | None] = mapped_column(BigInteger)
    retention: Mapped[bool] = mapped_column(Boolean, default=False)
    # Per business day of client-caused delay (dependency_delay entries); None: none accepted.
    advisory_rate_minor: Mapped[int | None] = mapped_column(BigInteger)
    # Each period's timesheet goes through the engagement's sign-off before it bills.
    approval: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Business days of delay on a milestone beyond which its deadlines move day-for-day;
    # None: delays never move a deadline.
    delay_grace: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TimePeriod(Base):
    """One calendar month of an engagement's time; its row is locked by every entry booked into
    it and by its close, so no entry lands in a period while it closes."""

    __tablename__ = "time_periods"
    engagement_id: Mapped[str] = mapped_column(ForeignKey("engagements.id"), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)  # YYYY-MM
    status: Mapped[str] = mapped_column(String(16), default=PeriodStatus.OPEN)
    # Sum of the work booked into it (bounded at the door, so its lines never overflow).
    entered_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    closed_at: Mapped[datetime | None] = mapped_column()
    closed_by: Mapped[str | None] = mapped_column(String(120))
    invoice_id: Mapped[str | None] = mapped_column(String(40))
    # The latest sign-off of its timesheet (``approval: true``): while that run is open the
    # period takes no entries; once it is rejected, only an admin's close asks again.
    sign_off_run_id: Mapped[str | None] = mapped_column(String(120))
    # What the close computed: totals, lines, entries hash (see services.time_periods).
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class TimeEntry(Base):
    """Append-only: a correction or a deletion adds a reversal row, never edits one."""

    __tablename__ = "time_entries"
    __table_args__ = (
        UniqueConstraint("engagement_id", "external_id"),
        Index("ix_time_entries_engagement_id_period", "engagement_id", "period"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    engagement_id: Mapped[str] = mapped_column(ForeignKey("engagements.id"))
    # The client's id; NULL on reversal rows (they are found through reverses_id).
    external_id: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    # An entry is reversed at most once.
    reverses_id: Mapped[str | None] = mapped_column(ForeignKey("time_entries.id"), unique=True)
    person: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(100))
    work_date: Mapped[date] = mapped_column(Date)
    # The billing period it is booked into: the month of work_date, or a later one (adjustment).
    period: Mapped[str] = mapped_column(String(7))
    hours: Mapped[str] = mapped_column(String(16))  # decimal string, negative on reversals
    rate_minor: Mapped[int] = mapped_column(BigInteger)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str] = mapped_column(Text, default="")
    milestone_key: Mapped[str | None] = mapped_column(String(100))
    adjustment: Mapped[bool] = mapped_column(Boolean, default=False)
    entry_kind: Mapped[str] = mapped_column(
        String(24), default=TimeEntryKind.WORK, server_default=TimeEntryKind.WORK.value
    )
    # A dependency delay's: who caused it and its business days (negative on its reversal).
    caused_by: Mapped[str | None] = mapped_column(String(200))
    business_days: Mapped[int | None] = mapped_column(Integer)
    # The request's canonical hash and body: the same body again gets the same answer.
    body_hash: Mapped[str | None] = mapped_column(String(64))
    body: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    actor: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set when its period closes: what of it was billed and what the caps kept back.
    billed_minor: Mapped[int | None] = mapped_column(BigInteger)
    capped_minor: Mapped[int | None] = mapped_column(BigInteger)


class MilestoneDelayShift(Base):
    """How far dependency delays have moved a milestone's deadline, from which base: the deadline
    is always ``base`` moved by (shift - base_shift) business days, so a reversed delay restores
    it exactly. A deadline changed since the last move (a change order) becomes the new base."""

    __tablename__ = "milestone_delay_shifts"
    milestone_id: Mapped[str] = mapped_column(ForeignKey("milestones.id"), primary_key=True)
    base_deadline: Mapped[datetime] = mapped_column()
    base_shift: Mapped[int] = mapped_column(Integer)  # business days in effect at the base
    shift: Mapped[int] = mapped_column(Integer)  # business days in effect now
    deadline: Mapped[datetime] = mapped_column()  # what the last move set
