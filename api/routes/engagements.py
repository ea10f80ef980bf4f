import secrets
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.deps import AdminDep, CallerDep, SessionDep, hash_token
from api.problems import Problem, not_found
from api.schemas import EngagementIn, MilestoneIn
from api.views import engagement_view
from db.audit import append_event
from db.models import (
    Customer,
    Engagement,
    EngagementVersion,
    IntegrationToken,
    Milestone,
    MilestoneDependency,
    Principal,
    new_id,
)

router = APIRouter(prefix="/v1/engagements", tags=["engagements"])


@router.post("", status_code=status.HTTP_201_CREATED)
def create_engagement(body: EngagementIn, session: SessionDep, caller: AdminDep) -> dict[str, Any]:
    errors = []
    if session.get(Customer, body.customer_id) is None:
        errors.append({"field": "customer_id", "message": f"unknown customer {body.customer_id!r}"})
    wanted = body.approval.principal_ids()
    known = set(session.scalars(select(Principal.id).where(Principal.id.in_(wanted))).all())
    errors += [
        {"field": "approval", "message": f"unknown principal {p!r}"} for p in sorted(wanted - known)
    ]
    if errors:
        raise Problem(
            422,
            "validation-error",
            "Invalid request",
            "; ".join(e["message"] for e in errors),
            errors,
        )

    engagement = Engagement(
        id=new_id("eng"),
        customer_id=body.customer_id,
        name=body.name,
        currency=body.currency,
        retention_percent=body.retention.percent,
        retention_release=body.retention.release,
        retention_release_delay=body.retention.release_delay,
        approval=body.approval.model_dump(mode="json"),
    )
    session.add(engagement)
    session.flush()
    add_milestones(session, engagement, body.milestones, existing={})
    append_event(
        session,
        engagement_id=engagement.id,
        actor=caller.actor,
        kind="engagement_created",
        data=body.model_dump(mode="json"),
    )
    record_version(session, engagement)
    session.commit()
    return engagement_view(session, engagement)


def add_milestones(
    session: Session,
    engagement: Engagement,
    milestones: Sequence[MilestoneIn],
    existing: dict[str, Milestone],
) -> dict[str, Milestone]:
    """Create milestones (and their dependencies) after the engagement's ``existing`` ones.

    Used at creation and by change orders; ``depends_on`` may name new or existing keys.
    """
    by_key = dict(existing)
    first = max((m.position for m in existing.values()), default=-1) + 1
    created = {}
    for position, m in enumerate(milestones, start=first):
        created[m.key] = by_key[m.key] = Milestone(
            id=new_id("ms"),
            engagement_id=engagement.id,
            key=m.key,
            name=m.name,
            position=position,
            fee_minor=m.fee_minor,
            trigger_mode=m.trigger,
            allow_partial=m.allow_partial,
            criteria=[c.model_dump() for c in m.acceptance_criteria],
        )
    session.add_all(created.values())
    session.flush()
    session.add_all(
        MilestoneDependency(
            milestone_id=by_key[m.key].id,
            depends_on_id=by_key[d.milestone].id,
            kpi=d.kpi.model_dump() if d.kpi else None,
        )
        for m in milestones
        for d in m.depends_on
    )
    session.flush()
    return created


def record_version(
    session: Session, engagement: Engagement, change_order_id: str | None = None
) -> None:
    """Keep the engagement's terms as they stand at its current version."""
    session.flush()
    session.add(
        EngagementVersion(
            engagement_id=engagement.id,
            version=engagement.version,
            snapshot=engagement_view(session, engagement),
            change_order_id=change_order_id,
        )
    )


@router.get("/{engagement_id}")
def get_engagement(engagement_id: str, session: SessionDep, caller: CallerDep) -> dict[str, Any]:
    return engagement_view(session, load_engagement(session, engagement_id, caller))


@router.post("/{engagement_id}/integration-tokens", status_code=status.HTTP_201_CREATED)
def create_integration_token(
    engagement_id: str, session: SessionDep, caller: AdminDep
) -> dict[str, str]:
    """A token that may post triggers for this engagement only; shown once, stored hashed."""
    engagement = load_engagement(session, engagement_id, caller)
    token = f"tgi_{secrets.token_urlsafe(32)}"
    record = IntegrationToken(
        id=new_id("itk"), engagement_id=engagement.id, token_hash=hash_token(token)
    )
    session.add(record)
    append_event(
        session,
        engagement_id=engagement.id,
        actor=caller.actor,
        kind="integration_token_created",
        data={"token_id": record.id},
    )
    session.commit()
    return {"id": record.id, "engagement_id": engagement.id, "token": token}


def can_see(caller: CallerDep, engagement: Engagement) -> bool:
    if caller.kind == "admin":
        return True
    if caller.kind == "integration":
        return caller.engagement_id == engagement.id
    approval = engagement.approval
    grants = [*approval.get("roles", {}).values(), *approval.get("escalation", {}).values()]
    return any(caller.id in ids for ids in grants)


def load_engagement(session: SessionDep, engagement_id: str, caller: CallerDep) -> Engagement:
    engagement = session.get(Engagement, engagement_id)
    if engagement is None:
        raise not_found("Engagement", engagement_id)
    if not can_see(caller, engagement):
        raise Problem(403, "forbidden", "Forbidden", "This token has no access to the engagement.")
    return engagement
