"""An engagement's audit trail (a hash chain), a milestone's part of it, and the chain's check."""

from fastapi import APIRouter
from sqlalchemy import select

from api.deps import CallerDep, SessionDep
from api.models import AuditCheck, AuditEvent, Page
from api.problems import not_found
from api.routes.listings import Cursor, Limit, numbered_page
from api.views import audit_view
from db.audit import verify_chain
from db.models import AuditEvent as AuditRow
from db.models import Milestone
from services.access import load_engagement

router = APIRouter(prefix="/v1", tags=["audit"])


@router.get("/engagements/{engagement_id}/audit")
def engagement_audit(
    engagement_id: str,
    session: SessionDep,
    caller: CallerDep,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[AuditEvent]:
    """The engagement's events in chain order (``seq``)."""
    engagement = load_engagement(session, engagement_id, caller)
    query = select(AuditRow).where(AuditRow.engagement_id == engagement.id)
    rows, next_cursor = numbered_page(session, query, AuditRow.seq, cursor, limit)
    return Page[AuditEvent](items=[audit_view(e) for e in rows], next_cursor=next_cursor)


@router.get("/engagements/{engagement_id}/audit/verify")
def verify_engagement_audit(
    engagement_id: str, session: SessionDep, caller: CallerDep
) -> AuditCheck:
    engagement = load_engagement(session, engagement_id, caller)
    check = verify_chain(session, engagement.id)
    return AuditCheck(ok=check.ok, events=check.events, first_bad_seq=check.first_bad_seq)


@router.get("/milestones/{milestone_id}/audit")
def milestone_audit(
    milestone_id: str,
    session: SessionDep,
    caller: CallerDep,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[AuditEvent]:
    """The milestone's events in chain order (``seq``)."""
    milestone = session.get(Milestone, milestone_id)
    if milestone is None:
        raise not_found("Milestone", milestone_id)
    load_engagement(session, milestone.engagement_id, caller)
    query = select(AuditRow).where(AuditRow.milestone_id == milestone.id)
    rows, next_cursor = numbered_page(session, query, AuditRow.seq, cursor, limit)
    return Page[AuditEvent](items=[audit_view(e) for e in rows], next_cursor=next_cursor)
