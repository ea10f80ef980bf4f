"""An engagement's time-and-materials terms: kept at creation (or replaced by a change order),
shown in its view, read as the domain's rate card and caps when entries are posted and periods
close."""

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from db.models import Engagement
from db.time_entries import TimeTerms
from domain.money import parse_percent
from domain.time_billing import Rate, Terms
from services.errors import invalid
from services.time_inputs import TimeAndMaterialsIn


def retention_refusal(engagement: Engagement, body: TimeAndMaterialsIn) -> str | None:
    """Why the engagement cannot keep retention on these terms' T&M; None when it can."""
    if body.retention and parse_percent(engagement.retention_percent) == 0:
        return (
            "T&M retention withholds the engagement's retention percent, which is 0: "
            "set retention.percent or drop time_and_materials.retention"
        )
    return None


def save_terms(session: Session, engagement: Engagement, body: TimeAndMaterialsIn) -> None:
    """Keep the engagement's T&M terms: its first ones, or a change order's replacing them."""
    refusal = retention_refusal(engagement, body)
    if refusal is not None:
        raise invalid("time_and_materials.retention", refusal)
    terms = session.get(TimeTerms, engagement.id) or TimeTerms(engagement_id=engagement.id)
    terms.rate_card = body.model_dump(mode="json")["rate_card"]
    terms.not_to_exceed_minor = body.not_to_exceed_minor
    terms.period_cap_minor = body.period_cap_minor
    terms.minimum_minor = body.minimum_minor
    terms.retention = body.retention
    terms.approval = body.approval
    terms.advisory_rate_minor = body.advisory_rate_minor
    terms.delay_grace = body.delay_grace
    session.add(terms)


def terms_view(session: Session, engagement_id: str) -> dict[str, Any] | None:
    terms = session.get(TimeTerms, engagement_id)
    if terms is None:
        return None
    return {
        "rate_card": terms.rate_card,
        "not_to_exceed_minor": terms.not_to_exceed_minor,
        "period_cap_minor": terms.period_cap_minor,
        "minimum_minor": terms.minimum_minor,
        "retention": terms.retention,
        "approval": terms.approval,
        "advisory_rate_minor": terms.advisory_rate_minor,
        "delay_grace": terms.delay_grace,
    }


def rate_card(terms: TimeTerms) -> list[Rate]:
    return rates(terms.rate_card)


def rates(rows: list[dict[str, Any]]) -> list[Rate]:
    """A stored (JSON) rate card as the domain's rates."""
    return [
        Rate(
            role=row["role"],
            rate_minor=row["rate_minor"],
            effective_from=date.fromisoformat(row["effective_from"])
            if row.get("effective_from")
            else None,
            people=dict(row.get("people") or {}),
        )
        for row in rows
    ]


def billing_terms(terms: TimeTerms, engagement: Engagement) -> Terms:
    return Terms(
        period_cap_minor=terms.period_cap_minor,
        not_to_exceed_minor=terms.not_to_exceed_minor,
        minimum_minor=terms.minimum_minor,
        retention_percent=parse_percent(engagement.retention_percent)
        if terms.retention
        else Decimal(0),
    )
