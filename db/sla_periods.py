"""SLA judgements: what became of each ended period of an SLA milestone, recorded once."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from db.models import Base


class SlaOutcome(StrEnum):
    MET = "met"  # a run billed the period
    NOT_MET = "not_met"  # no passing report before the period was judged


class SlaJudgement(Base):
    """One per (milestone, period): written once when the period is judged, never changed; a
    trigger for a judged period is refused (``period-closed``)."""

    __tablename__ = "sla_judgements"
    milestone_id: Mapped[str] = mapped_column(ForeignKey("milestones.id"), primary_key=True)
    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    engagement_id: Mapped[str] = mapped_column(ForeignKey("engagements.id"), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    # The run that billed a met period.
    run_id: Mapped[str | None] = mapped_column(String(120))
    reason: Mapped[str] = mapped_column(Text)
    # The service credit a not_met period gave, and the draft line that carries it.
    credit_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    invoice_id: Mapped[str | None] = mapped_column(String(40))
    line_id: Mapped[str | None] = mapped_column(String(40))
    judged_at: Mapped[datetime] = mapped_column()
    judged_by: Mapped[str] = mapped_column(String(120))
