import secrets
from collections.abc import Sequence
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.deps import AdminDep, CallerDep, SessionDep, hash_token
from api.problems import Problem, invalid
from api.schemas import EngagementIn, MilestoneIn
from api.views import engagement_version_view, engagement_view
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
from domain.bonus import bonus_fee_minor
from domain.success_fee import InvalidSuccessFee, parse_success_fee_terms
from services.access import load_engagement

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
        payment_terms=body.payment_terms,
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
            kind=m.kind,
            # A success fee is computed when billed; a percent_of bonus is resolved below.
            fee_minor=m.fee_minor if m.fee_minor is not None else 0,
            deadline=m.deadline,
            clawback=m.clawback.model_dump(mode="json") if m.clawback else None,
            success_fee=_success_fee_terms(m, engagement.currency),
            trigger_mode=m.trigger,
            allow_partial=m.allow_partial,
            criteria=[c.model_dump() for c in m.acceptance_criteria],
        )
    for m in milestones:
        if m.fee_percent_of is not None:
            created[m.key].fee_minor = _bonus_fee(by_key, m)
            created[m.key].fee_basis = m.fee_percent_of.model_dump()
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


def _success_fee_terms(m: MilestoneIn, currency: str) -> dict[str, Any] | None:
    """The terms as stored: every field present, checked in the engagement's currency."""
    if m.success_fee is None:
        return None
    try:
        return asdict(parse_success_fee_terms(m.success_fee, currency))
    except InvalidSuccessFee as exc:
        raise invalid("success_fee", f"milestone {m.key}: {exc}") from None


def _bonus_fee(by_key: dict[str, Milestone], m: MilestoneIn) -> int:
    """A bonus's fee from its basis milestone's fee, fixed once when the bonus is created."""
    assert m.fee_percent_of is not None
    basis = by_key.get(m.fee_percent_of.milestone)
    if basis is None or basis.kind != "standard":
        raise invalid(
            "fee_percent_of",
            f"milestone {m.key}: fee_percent_of must name a standard milestone of this engagement, "
            f"not {m.fee_percent_of.milestone!r}",
        )
    return bonus_fee_minor(basis.fee_minor, m.fee_percent_of.percent)


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
def get_engagement(
    engagement_id: str,
    session: SessionDep,
    caller: CallerDep,
    version: Annotated[
        int | None,
        Query(gt=0, le=2**31 - 1, description="Show the engagement as it stood at this version."),
    ] = None,
) -> dict[str, Any]:
    engagement = load_engagement(session, engagement_id, caller)
    if version is None:
        return engagement_view(session, engagement)
    stored = session.get(EngagementVersion, (engagement.id, version))
    if stored is None:
        raise Problem(
            404,
            "not-found",
            "Version not found",
            f"Engagement {engagement.id} has no version {version}; "
            f"its current version is {engagement.version}.",
        )
    return engagement_version_view(stored)


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
