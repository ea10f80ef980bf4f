from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from api.deps import CallerDep, SessionDep
from api.problems import not_found
from api.views import audit_view
from db.audit import verify_chain
from db.models import AuditEvent, Milestone
from services.access import load_engagement

router = APIRouter(prefix="/v1", tags=["audit"])


@router.get("/engagements/{engagement_id}/audit")
def engagement_audit(
    engagement_id: str, session: SessionDep, caller: CallerDep
) -> list[dict[str, Any]]:
    engagement = load_engagement(session, engagement_id, caller)
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.engagement_id == engagement.id).order_by(AuditEvent.seq)
    ).all()
    return [audit_view(e) for e in events]


@router.get("/engagements/{engagement_id}/audit/verify")
def verify_engagement_audit(
    engagement_id: str, session: SessionDep, caller: CallerDep
) -> dict[str, Any]:
    engagement = load_engagement(session, engagement_id, caller)
    check = verify_chain(session, engagement.id)
    return {"ok": check.ok, "events": check.events, "first_bad_seq": check.first_bad_seq}


@router.get("/milestones/{milestone_id}/audit")
def milestone_audit(
    milestone_id: str, session: SessionDep, caller: CallerDep
) -> list[dict[str, Any]]:
    milestone = session.get(Milestone, milestone_id)
    if milestone is None:
        raise not_found("Milestone", milestone_id)
    load_engagement(session, milestone.engagement_id, caller)
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.milestone_id == milestone.id).order_by(AuditEvent.seq)
    ).all()
    return [audit_view(e) for e in events]
