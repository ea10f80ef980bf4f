"""Signed trigger URLs: one row per URL, which decides whether its token still works."""

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from db.models import Base
from db.types import utcnow


class TriggerUrl(Base):
    """A URL that triggers one milestone without a bearer token (services/trigger_urls.py).

    The token in the URL only names the row; expiry, revocation and ``max_uses`` are read here
    on every use, so a revoked URL stops working at once. ``uses`` counts accepted triggers.
    """

    __tablename__ = "trigger_urls"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    engagement_id: Mapped[str] = mapped_column(ForeignKey("engagements.id"), index=True)
    milestone_id: Mapped[str] = mapped_column(ForeignKey("milestones.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(80))
    expires_at: Mapped[datetime] = mapped_column()
    max_uses: Mapped[int | None] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    revoked_at: Mapped[datetime | None] = mapped_column()
