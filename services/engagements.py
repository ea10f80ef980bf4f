"""Engagements: creating one with its milestones, adding milestones later, and keeping each
version of its terms. Creation is the API's; change orders add milestones and record versions
through the same functions, so a milestone is built by one set of rules."""

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.audit import append_event
from db.models import (
    Customer,
    Engagement,
    EngagementVersion,
    Milestone,
    MilestoneDependency,
    Principal,
    RetentionEntry,
    new_id,
)
from domain.bonus import bonus_fee_minor
from domain.success_fee import InvalidSuccessFee, parse_success_fee_terms
from domain.times import iso
from services.approval_inputs import DEFAULT_DEEMED_WARNING
from services.callers import Caller
from services.errors import Problem, invalid
from services.inputs import EngagementIn, MilestoneIn
from services.time_terms import save_terms, terms_view
from workflows.contracts import ApprovalPolicy


def create_engagement(session: Session, caller: Caller, body: EngagementIn) -> Engagement:
    """Create the engagement, its milestones and its first version, audited, in one commit."""
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
    if body.time_and_materials is not None:
        save_terms(session, engagement, body.time_and_materials)
    append_event(
        session,
        engagement_id=engagement.id,
        actor=caller.actor,
        kind="engagement_created",
        data=body.model_dump(mode="json"),
    )
    record_version(session, engagement)
    session.commit()
    return engagement


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
            fee_minor=m.stored_fee_minor,
            repeatable=m.repeatable,
            sla_period=m.period,
            service_credit_minor=m.service_credit_minor,
            report_grace_days=m.report_grace_days,
            confirmation=m.confirmation.model_dump() if m.confirmation else None,
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


def approval_policy(engagement: Engagement) -> ApprovalPolicy:
    """The engagement's sign-off policy as every sign-off workflow freezes it."""
    approval = engagement.approval
    return ApprovalPolicy(
        roles=approval["roles"],
        escalation=approval.get("escalation") or {},
        client_roles=approval.get("client_roles") or [],
        reminder_after=approval.get("reminder_after"),
        escalate_after=approval.get("escalate_after"),
        deemed_acceptance_after=approval.get("deemed_acceptance_after"),
        expire_after=approval.get("expire_after"),
        calendar=approval.get("calendar") or {},
        # Engagements stored before the warning existed get the default.
        deemed_warning_before=approval.get("deemed_warning_before", dict(DEFAULT_DEEMED_WARNING)),
    )


def engagement_view(session: Session, engagement: Engagement) -> dict[str, Any]:
    """The engagement's terms and state as the API shows them and each version keeps."""
    milestones = session.scalars(
        select(Milestone)
        .where(Milestone.engagement_id == engagement.id)
        .order_by(Milestone.position)
    ).all()
    keys = {m.id: m.key for m in milestones}
    deps = session.scalars(
        select(MilestoneDependency).where(MilestoneDependency.milestone_id.in_(keys))
    ).all()
    balance = session.scalar(
        select(func.coalesce(func.sum(RetentionEntry.amount_minor), 0)).where(
            RetentionEntry.engagement_id == engagement.id
        )
    )
    return {
        "id": engagement.id,
        "customer_id": engagement.customer_id,
        "name": engagement.name,
        "currency": engagement.currency,
        "status": engagement.status,
        "version": engagement.version,
        "retention": {
            "percent": engagement.retention_percent,
            "release": engagement.retention_release,
            "release_delay": engagement.retention_release_delay,
        },
        "approval": engagement.approval,
        "payment_terms": engagement.payment_terms,
        "retention_balance_minor": int(balance or 0),
        "time_and_materials": terms_view(session, engagement.id),
        "created_at": iso(engagement.created_at),
        "milestones": [
            {
                "id": m.id,
                "key": m.key,
                "name": m.name,
                "kind": m.kind,
                "fee_minor": m.fee_minor,
                "fee_basis": m.fee_basis,
                "deadline": iso(m.deadline),
                "clawback": m.clawback,
                "success_fee": m.success_fee,
                "trigger": m.trigger_mode,
                "allow_partial": m.allow_partial,
                "repeatable": m.repeatable,
                "period": m.sla_period,
                "service_credit_minor": m.service_credit_minor,
                "report_grace_days": m.report_grace_days,
                "confirmation": m.confirmation,
                "acceptance_criteria": m.criteria,
                "depends_on": [
                    {
                        "milestone": keys[d.depends_on_id],
                        "milestone_id": d.depends_on_id,
                        "kpi": d.kpi,
                    }
                    for d in deps
                    if d.milestone_id == m.id
                ],
                "status": m.status,
                "accepted_percent": m.accepted_percent,
                "billed_minor": m.billed_minor,
                "retention_held_minor": m.retention_held_minor,
                "open_run_id": m.open_run_id,
            }
            for m in milestones
        ],
    }
