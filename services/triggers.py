"""Accepting a trigger: the one place every door (API, signed webhook, signed URL) ends in.

A trigger is recorded once per (milestone, Idempotency-Key) together with its run's frozen input
and the milestone's claim, in one transaction; a retry with the same key replays the answer.
Starting the run's workflow is a separate step (``services.runs.start_run``) after the commit, so
no transaction waits on Temporal; a trigger whose run was never started is started later by the
reconciler from the recorded input.
"""

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.models import Engagement, Milestone, Run, Trigger, new_id
from domain.confirmations import confirmation_error
from domain.lifecycle import CLAIMABLE, MilestoneStatus
from domain.money import parse_percent
from domain.success_fee import InvalidSuccessFee, parse_success_fee_terms, success_fee
from services.access import load_engagement
from services.callers import Caller
from services.errors import Problem, invalid, not_found
from services.evidence import EvidenceNotLinkable, link_evidence
from services.run_signers import signers
from services.runs import canonical_hash, milestone_run_id, recorded_input, snapshot
from services.sla_periods import check_period_free, sla_period
from workflows.contracts import RunInput

# A run's input travels with every activity call and into its history: keep it far below
# Temporal's 2 MB payload limit (and its history small) whatever a trigger carries.
MAX_RUN_INPUT_BYTES = 128 * 1024
# Trigger fields added later: absent and null hash alike, so older retries still replay.
OPTIONAL_FIELDS = ("confirmation_id", "period")


@dataclass
class Accepted:
    run: RunInput
    stage: str
    new: bool


def accept_trigger(
    session: Session, caller: Caller, milestone_id: str, key: str, data: dict[str, Any]
) -> Accepted:
    """Record the trigger and claim the milestone, or replay the answer to the same key.

    ``data`` is the trigger as JSON (``completion_percent``, ``kpis``, ``evidence_ids`` …),
    already validated for shape; this checks it against the milestone and the engagement."""
    # Hashed as before confirmations and periods existed, when they are not given.
    data = {k: v for k, v in data.items() if k not in OPTIONAL_FIELDS or v is not None}
    milestone = session.get(Milestone, milestone_id)
    if milestone is None:
        raise not_found("Milestone", milestone_id)
    load_engagement(session, milestone.engagement_id, caller)
    if caller.kind == "principal":
        raise Problem(
            403,
            "forbidden",
            "Forbidden",
            "Triggers are posted with the admin token or an integration token.",
        )
    body_hash = canonical_hash(data)
    replay = _replay(session, milestone.id, key, body_hash)
    if replay is not None:
        return replay
    # Locked, so a close-out or change order cannot slip between this check and the claim.
    engagement = session.scalars(
        select(Engagement)
        .where(Engagement.id == milestone.engagement_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    session.refresh(milestone)
    _check(engagement, milestone, data)
    confirmation = data.get("confirmation_id")
    if confirmation is not None:
        _check_unused(session, engagement.id, confirmation)
    period = sla_period(engagement, milestone, data.get("period"), datetime.now(UTC))
    if period is not None:
        data = {**data, "period": period}
        check_period_free(session, milestone, period)
    try:
        link_evidence(session, data["evidence_ids"], engagement.id, caller)
    except EvidenceNotLinkable as exc:
        errors = [{"field": "evidence_ids", "message": m} for m in exc.errors.values()]
        raise Problem(422, "validation-error", "Invalid request", str(exc), errors) from None

    run_id = milestone_run_id(milestone, key)
    trigger_id = new_id("trg")
    run_input = snapshot(session, engagement, milestone, trigger_id, run_id, data)
    recorded = asdict(run_input)
    if len(json.dumps(recorded).encode()) > MAX_RUN_INPUT_BYTES:
        raise Problem(
            413,
            "trigger-too-large",
            "Trigger too large",
            f"The trigger with the milestone's terms exceeds {MAX_RUN_INPUT_BYTES} bytes; "
            "send fewer or shorter KPIs.",
        )
    # A filing of a repeatable milestone claims only its confirmation id, an SLA period only its
    # period: filings (and periods) run side by side.
    claimed = (
        milestone.repeatable
        or period is not None
        or session.execute(
            update(Milestone)
            .where(
                Milestone.id == milestone.id,
                Milestone.open_run_id.is_(None),
                Milestone.status.in_([str(s) for s in CLAIMABLE]),
            )
            .values(open_run_id=run_id, status=MilestoneStatus.IN_REVIEW)
        ).rowcount
    )
    if not claimed:
        session.rollback()
        return _lost_claim(session, milestone.id, key, body_hash)
    session.add(
        Trigger(
            id=trigger_id,
            milestone_id=milestone.id,
            idempotency_key=key,
            body_hash=body_hash,
            body=data,
            run_id=run_id,
            actor=caller.actor,
        )
    )
    session.flush()
    session.add(
        Run(
            id=run_id,
            milestone_id=milestone.id,
            engagement_id=engagement.id,
            trigger_id=trigger_id,
            snapshot=recorded,
            confirmation_id=confirmation,
            confirmation_held=confirmation,
            period=period,
        )
    )
    session.add_all(signers(run_id, run_input.policy))
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        replay = _replay(session, milestone.id, key, body_hash)
        if replay is not None:
            return replay
        if confirmation is not None:  # a concurrent trigger took the confirmation first
            _check_unused(session, engagement.id, confirmation)
        if period is not None:  # or the period
            check_period_free(session, milestone, period)
        raise
    return Accepted(run=run_input, stage="received", new=True)


def _check(engagement: Engagement, milestone: Milestone, data: dict[str, Any]) -> None:
    percent = parse_percent(data["completion_percent"])
    if engagement.status != "active":
        raise Problem(
            409,
            "engagement-closed",
            "Engagement closed",
            f"Engagement {engagement.id} is {engagement.status}; it takes no triggers.",
        )
    if milestone.status == MilestoneStatus.REMOVED:
        raise Problem(
            409,
            "milestone-removed",
            "Milestone removed",
            f"Milestone {milestone.key} was removed by a change order; it takes no triggers.",
        )
    if percent < 100 and (milestone.repeatable or not milestone.allow_partial):
        raise invalid(
            "completion_percent",
            f"milestone {milestone.key} does not allow partial acceptance; send 100",
        )
    refused = confirmation_error(milestone.confirmation, data.get("confirmation_id"))
    if refused:
        raise invalid("confirmation_id", f"milestone {milestone.key}: {refused}")
    if milestone.success_fee is not None:
        _check_measurement(milestone.success_fee, engagement.currency, data["kpis"])
    if milestone.repeatable or milestone.sla_period:  # accepted after its first filing or
        if milestone.status == MilestoneStatus.WAIVED:  # period, it keeps taking them
            raise Problem(
                409,
                "milestone-accepted",
                "Milestone waived",
                f"Milestone {milestone.key} was waived; it takes no triggers.",
            )
        return
    if milestone.status in (MilestoneStatus.ACCEPTED, MilestoneStatus.WAIVED):
        raise Problem(
            409,
            "milestone-accepted",
            "Milestone already accepted",
            f"Milestone {milestone.key} is already {milestone.status}; it takes no triggers.",
        )
    if percent <= Decimal(milestone.accepted_percent):
        raise Problem(
            409,
            "percent-not-above-accepted",
            "Nothing new to accept",
            f"Milestone {milestone.key} is already accepted to "
            f"{milestone.accepted_percent}%; a trigger must go above that.",
        )


def _check_unused(session: Session, engagement_id: str, confirmation: str) -> None:
    """A regulator confirms a filing once: its id bills at most one run of the engagement.

    A run keeps its confirmation once billed or rejected (a verdict on that filing); a run that
    ended any other way released it (``domain.confirmations.KEEPS_CONFIRMATION``)."""
    holder = session.scalar(
        select(Run).where(Run.engagement_id == engagement_id, Run.confirmation_held == confirmation)
    )
    if holder is not None:
        raise Problem(
            409,
            "confirmation-used",
            "Confirmation already used",
            f"Confirmation {confirmation!r} was already used by run {holder.id} "
            f"({holder.stage}); a regulator confirms a filing once.",
        )


def _check_measurement(terms: dict[str, Any], currency: str, kpis: dict[str, str]) -> None:
    """A success fee is billed from the trigger's measurement: it must be there, and billable."""
    parsed = parse_success_fee_terms(terms, currency)
    field = f"kpis.{parsed.metric}"
    if parsed.metric not in kpis:
        raise invalid(field, f"a success-fee trigger must report {parsed.metric}")
    try:
        success_fee(parsed, kpis[parsed.metric], currency)
    except InvalidSuccessFee as exc:
        raise invalid(field, str(exc)) from None


def _lost_claim(session: Session, milestone_id: str, key: str, body_hash: str) -> Accepted:
    replay = _replay(session, milestone_id, key, body_hash)  # a concurrent twin won
    if replay is not None:
        return replay
    milestone = session.get_one(Milestone, milestone_id)
    raise Problem(
        409,
        "open-run",
        "Milestone has an open run",
        f"Milestone {milestone.key} already has an open run ({milestone.open_run_id}).",
    )


def _replay(session: Session, milestone_id: str, key: str, body_hash: str) -> Accepted | None:
    trigger = session.scalar(
        select(Trigger).where(Trigger.milestone_id == milestone_id, Trigger.idempotency_key == key)
    )
    if trigger is None:
        return None
    if trigger.body_hash != body_hash:
        raise Problem(
            422,
            "idempotency-key-reused",
            "Idempotency-Key reused",
            "This Idempotency-Key was used with a different body; use a new key.",
        )
    run = session.get_one(Run, trigger.run_id)
    return Accepted(run=recorded_input(run), stage=run.stage, new=False)
