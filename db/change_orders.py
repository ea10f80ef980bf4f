"""Change orders and the engagement versions they apply."""

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from db.models import Base
from db.types import utcnow


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
