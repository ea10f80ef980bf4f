"""Encounter sign-off (the engagement's approval says ``"encounters": "sign_off"``): each upload's
batch is recorded with its encounters ``pending_sign_off`` and an ``encounters`` run holding the
batch's count, total and a sha256 of its encounter ids; the ``EncounterSignOff`` workflow
collects the engagement's dual sign-off before the batch bills.

One run per batch, not per encounter: a batch of 10,000 needs one sign-off. Approved → the batch
bills as an unsigned one would; rejected, expired, cancelled or failed before approval → its
encounters take that status and never bill (their ids stay taken: post them again under new
``encounter_id``s).
"""

import contextlib
from dataclasses import asdict, dataclass

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.converter import value_to_type
from temporalio.exceptions import WorkflowAlreadyStartedError

from db.audit import append_event
from db.encounters import NOT_SIGNED, Encounter, EncounterBatch, EncounterStatus
from db.models import Engagement, Run
from domain.lifecycle import TERMINAL_STAGES
from services.engagements import approval_policy
from services.errors import Problem
from services.run_signers import signers
from workflows.encounter_sign_off import EncounterSignOff, EncountersInput, search_attributes

RUN_KIND = "encounters"
# A batch's sign-off run id is its billing workflow's id with this suffix.
SUFFIX = ":sign-off"


def needs_sign_off(engagement: Engagement) -> bool:
    return (engagement.approval or {}).get("encounters") == "sign_off"


def sign_off_run_id(batch: EncounterBatch) -> str:
    return batch.workflow_id + SUFFIX


def request_sign_off(
    session: Session, engagement: Engagement, batch: EncounterBatch, ids_sha256: str
) -> EncountersInput:
    """Record the batch's sign-off run, audited; in the upload's transaction (the caller
    commits), so a batch that needs sign-off never exists without its run."""
    inp = EncountersInput(
        run_id=sign_off_run_id(batch),
        engagement_id=engagement.id,
        customer_id=engagement.customer_id,
        engagement_name=engagement.name,
        batch_id=batch.id,
        payer_id=batch.payer_id,
        currency=engagement.currency,
        policy=approval_policy(engagement),
        count=batch.accepted,
        total_minor=batch.total_minor,
        encounter_ids_sha256=ids_sha256,
        requested_by=batch.created_by,
    )
    session.add(
        Run(
            id=inp.run_id,
            kind=RUN_KIND,
            milestone_id=None,
            engagement_id=engagement.id,
            trigger_id=None,
            snapshot=asdict(inp),
        )
    )
    session.add_all(signers(inp.run_id, inp.policy))
    session.flush()
    append_event(
        session,
        engagement_id=engagement.id,
        actor=batch.created_by,
        kind="encounters_sign_off_requested",
        run_id=inp.run_id,
        data={
            "batch_id": batch.id,
            "count": inp.count,
            "total_minor": inp.total_minor,
            "currency": inp.currency,
            "encounter_ids_sha256": ids_sha256,
        },
        dedupe_key=f"{inp.run_id}:requested",
    )
    return inp


def signing_open() -> ColumnElement[bool]:
    """Whether an ``EncounterBatch`` row's sign-off run is still open (a query criterion): its
    encounters are the run's to bill."""
    return (
        select(Run.id)
        .where(
            Run.id == EncounterBatch.workflow_id.concat(SUFFIX),
            Run.stage.not_in(TERMINAL_STAGES),
        )
        .exists()
    )


def recorded_sign_off(session: Session, batch: EncounterBatch) -> Run | None:
    """The batch's sign-off run, if its engagement asked for one when it was uploaded."""
    return session.get(Run, sign_off_run_id(batch))


async def start_sign_off(client: Client, task_queue: str, inp: EncountersInput) -> None:
    """Start a recorded sign-off, or find it started (the upload's, the bill endpoint's and the
    reconciler's way in)."""
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await client.start_workflow(
            EncounterSignOff.run,
            inp,
            id=inp.run_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=search_attributes(inp),
            static_summary=f"sign-off of {inp.count} encounters of batch {inp.batch_id}",
        )


def release_signed(session: Session, batch_id: str) -> int:
    """Approved: the batch's encounters become billable; how many were released now."""
    return session.execute(
        update(Encounter)
        .where(
            Encounter.batch_id == batch_id,
            Encounter.status == EncounterStatus.PENDING_SIGN_OFF,
        )
        .values(status=EncounterStatus.PRICED)
    ).rowcount


def mark_not_signed(session: Session, batch_id: str, stage: str) -> int:
    """Ended without approval (``rejected``, ``expired``, ``cancelled``, ``failed``): the batch's
    encounters still awaiting sign-off take that status and never bill; how many did."""
    return session.execute(
        update(Encounter)
        .where(
            Encounter.batch_id == batch_id,
            Encounter.status == EncounterStatus.PENDING_SIGN_OFF,
        )
        .values(status=NOT_SIGNED[stage])
    ).rowcount


@dataclass
class Signing:
    """A batch's sign-off run as recorded: its id, stage and input."""

    run_id: str
    stage: str
    batch: EncountersInput


def open_sign_off(session: Session, batch: EncounterBatch) -> Signing | None:
    """The batch's sign-off while it is open (starting it is how the batch bills), else None:
    no sign-off, or it ended (approved, what is left bills as any batch does)."""
    run = recorded_sign_off(session, batch)
    if run is None or run.stage in TERMINAL_STAGES:
        return None
    return Signing(run.id, run.stage, value_to_type(EncountersInput, run.snapshot))


def refuse_unsigned(session: Session, batch: EncounterBatch) -> None:
    """409 when the batch's sign-off ended without approval: its encounters never bill."""
    stage = session.scalar(
        select(Encounter.status)
        .where(Encounter.batch_id == batch.id, Encounter.status.in_(NOT_SIGNED.values()))
        .limit(1)
    )
    if stage is not None:
        raise Problem(
            409,
            "batch-not-signed-off",
            "Batch not signed off",
            f"The batch's sign-off ({sign_off_run_id(batch)}) ended {stage}: its encounters "
            "never bill. Post them again under new encounter ids.",
        )
