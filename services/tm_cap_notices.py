"""Notices that a time-and-materials engagement is nearing or has reached its caps: 80 % and
100 % of ``not_to_exceed_minor`` (billed to date) and of ``period_cap_minor`` (the month closed).

Written in the period close's transaction (``activities/time_periods.py``), to the same people as
a document notice (``services.document_notices``). The outbox row's ``run_id`` names the cap
(``tm-cap:<engagement>:not-to-exceed``, or ``…:<YYYY-MM>`` for a month's cap) and its kind the
threshold, so each threshold is told once per cap however often the close is retried, and only
the highest threshold one close crosses is told.
"""

from sqlalchemy.orm import Session

from db.models import Customer, Engagement
from db.time_entries import TimeTerms
from domain.money import format_minor
from services.document_notices import DocumentNotice, queue_document
from services.notices import NoticeKind

THRESHOLDS = ((100, NoticeKind.TM_CAP_REACHED), (80, NoticeKind.TM_CAP_80))


def crossed(before_minor: int, after_minor: int, cap_minor: int) -> int | None:
    """The highest threshold (percent of the cap) that billing from ``before`` to ``after``
    reached for the first time, or None."""
    for percent, _ in THRESHOLDS:
        if before_minor * 100 < cap_minor * percent <= after_minor * 100:
            return percent
    return None


def queue_cap_notices(
    session: Session,
    engagement: Engagement,
    terms: TimeTerms,
    period: str,
    *,
    billed_before_minor: int,
    period_minor: int,
    period_work_minor: int,
) -> list[int]:
    """The notices the close of ``period`` calls for; the new outbox rows' ids."""
    ids: list[int] = []
    nte = terms.not_to_exceed_minor
    if nte:
        after = billed_before_minor + period_minor
        percent = crossed(billed_before_minor, after, nte)
        if percent is not None:
            notice = _notice(session, engagement, "not_to_exceed", period, percent, nte, after)
            ids += queue_document(session, notice)
    cap = terms.period_cap_minor
    if cap:
        percent = crossed(0, period_work_minor, cap)
        if percent is not None:
            notice = _notice(
                session, engagement, "period_cap", period, percent, cap, period_work_minor
            )
            ids += queue_document(session, notice)
    return ids


def _notice(
    session: Session,
    engagement: Engagement,
    cap: str,
    period: str,
    percent: int,
    cap_minor: int,
    billed_minor: int,
) -> DocumentNotice:
    kind = dict((p, k) for p, k in THRESHOLDS)[percent]
    currency = engagement.currency
    money = f"{format_minor(cap_minor, currency)} {currency}"
    remaining = max(cap_minor - billed_minor, 0)
    if cap == "not_to_exceed":
        document_id, what = f"tm-cap:{engagement.id}:not-to-exceed", "not-to-exceed"
        billed_label = f"Billed to date (through {period})"
    else:
        document_id, what = f"tm-cap:{engagement.id}:{period}", f"{period} cap"
        billed_label = f"Time and materials billed for {period}"
    state = "reached" if percent == 100 else f"{percent}% reached"
    return DocumentNotice(
        kind=kind,
        document_id=document_id,
        customer=session.get_one(Customer, engagement.customer_id),
        engagements=[engagement],
        currency=currency,
        headline=f"{engagement.name}: time and materials {what} of {money} {state}",
        facts=[
            ("Engagement", engagement.name),
            ("Cap", f"{what}, {money}"),
            ("Threshold", f"{percent}%"),
            ("Period closed", period),
        ],
        lines=[(billed_label, billed_minor)],
        total=("Left under the cap", remaining),
        detail="Work beyond the cap is recorded but not billed." if percent == 100 else None,
        data={
            "engagement_id": engagement.id,
            "customer_id": engagement.customer_id,
            "cap": cap,
            "period": period,
            "threshold_percent": percent,
            "cap_minor": cap_minor,
            "billed_minor": billed_minor,
            "remaining_minor": remaining,
            "currency": currency,
        },
    )
