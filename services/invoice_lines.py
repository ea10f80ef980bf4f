"""Which engagements an invoice's lines bill, and the time zone its dates are read in: shared by
finalizing, credit notes, notices and the PDFs."""

from collections.abc import Iterable, Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.encounters import encounter_engagements
from db.models import Engagement, InvoiceLine, Milestone, Run
from services.time_periods import period_engagement

UTC_ZONE = ZoneInfo("UTC")


def line_engagements(session: Session, lines: Iterable[InvoiceLine]) -> dict[str, str]:
    """Invoice line id → the engagement it bills: through its run (a milestone run or an
    encounter), else its milestone, else its time period."""
    lines = list(lines)
    run_ids = {line.run_id for line in lines if line.run_id}
    milestone_ids = {line.milestone_id for line in lines if line.milestone_id}
    by_run = {
        run_id: engagement_id
        for run_id, engagement_id in session.execute(
            select(Run.id, Run.engagement_id).where(Run.id.in_(run_ids))
        )
    }
    by_milestone = {
        milestone_id: engagement_id
        for milestone_id, engagement_id in session.execute(
            select(Milestone.id, Milestone.engagement_id).where(Milestone.id.in_(milestone_ids))
        )
    }
    by_run.update(encounter_engagements(session, run_ids))
    found: dict[str, str] = {}
    for line in lines:
        engagement_id = (
            by_run.get(line.run_id or "")
            or by_milestone.get(line.milestone_id or "")
            or period_engagement(line.run_id)
        )
        if engagement_id is not None:
            found[line.id] = engagement_id
    return found


def engagements_billed(session: Session, lines: Iterable[InvoiceLine]) -> Sequence[Engagement]:
    """The engagements that invoice lines bill, by id."""
    engaged = line_engagements(session, lines)
    return session.scalars(
        select(Engagement).where(Engagement.id.in_(set(engaged.values()))).order_by(Engagement.id)
    ).all()


def issue_zone(engagements: Sequence[Engagement]) -> ZoneInfo:
    """The time zone a document's dates are read in: the engagements' calendar zone when they
    all share one (the customer's local date), else UTC."""
    zones = {(e.approval.get("calendar") or {}).get("timezone") or "UTC" for e in engagements}
    return ZoneInfo(zones.pop()) if len(zones) == 1 else UTC_ZONE
