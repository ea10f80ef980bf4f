"""Who may see an engagement: the admin, its integration token, and the people it names."""

from sqlalchemy.orm import Session

from db.models import Engagement
from services.callers import Caller
from services.errors import Problem, not_found


def can_see(caller: Caller, engagement: Engagement) -> bool:
    if caller.kind == "admin":
        return True
    if caller.kind == "integration":
        return caller.engagement_id == engagement.id
    approval = engagement.approval
    grants = [*approval.get("roles", {}).values(), *approval.get("escalation", {}).values()]
    return any(caller.id in ids for ids in grants)


def load_engagement(session: Session, engagement_id: str, caller: Caller) -> Engagement:
    engagement = session.get(Engagement, engagement_id)
    if engagement is None:
        raise not_found("Engagement", engagement_id)
    if not can_see(caller, engagement):
        raise Problem(403, "forbidden", "Forbidden", "This token has no access to the engagement.")
    return engagement
