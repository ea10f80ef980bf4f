"""An encounter batch: as the API shows it (billed so far, on which invoices, its status),
starting its billing, and the batches the reconciler finds unbilled."""

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

from db.encounters import NOT_SIGNED, Encounter, EncounterBatch, EncounterStatus
from db.models import Run
from domain.times import iso
from services.encounter_sign_offs import sign_off_run_id, signing_open
from workflows.encounters import BillEncounters, BillEncountersInput


def batch_view(session: Session, batch: EncounterBatch) -> dict[str, Any]:
    """How far billing has come, and where the batch's sign-off stands if it has one."""
    counts = {
        status: (count, amount)
        for status, count, amount in session.execute(
            select(Encounter.status, func.count(), func.sum(Encounter.amount_minor))
            .where(Encounter.batch_id == batch.id)
            .group_by(Encounter.status)
        )
    }
    billed, billed_minor = counts.get(EncounterStatus.BILLED, (0, 0))
    run_id = sign_off_run_id(batch)
    run = session.get(Run, run_id)
    invoices = session.scalars(
        select(Encounter.invoice_id)
        .where(Encounter.batch_id == batch.id, Encounter.invoice_id.is_not(None))
        .distinct()
    ).all()
    return {
        "batch_id": batch.id,
        "engagement_id": batch.engagement_id,
        "payer_id": batch.payer_id,
        "workflow_id": batch.workflow_id,
        "accepted": batch.accepted,
        "refused": batch.refused,
        "total_minor": batch.total_minor,
        "billed": billed,
        "billed_minor": int(billed_minor or 0),
        "invoice_ids": sorted(i for i in invoices if i),
        "status": _batch_status(counts, batch.accepted),
        "sign_off_run_id": run_id if run is not None else None,
        "created_at": iso(batch.created_at),
    }


def _batch_status(counts: dict[str, tuple[int, int]], accepted: int) -> str:
    """awaiting_sign_off, billing (some not billed yet), billed, or how its sign-off ended."""
    if EncounterStatus.PENDING_SIGN_OFF in counts:
        return "awaiting_sign_off"
    if EncounterStatus.PRICED in counts:
        return "billing"
    if counts.get(EncounterStatus.BILLED, (0, 0))[0] == accepted:
        return "billed"
    return next(str(s) for s in NOT_SIGNED.values() if s in counts)


async def start_billing(client: Client, task_queue: str, batch: EncounterBatch) -> None:
    """Start the batch's ``BillEncounters`` workflow, or find it running; raises what Temporal
    raises. Billing again posts only what is not billed yet."""
    await client.start_workflow(
        BillEncounters.run,
        BillEncountersInput(batch.engagement_id, batch.id),
        id=batch.workflow_id,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary=f"bill {batch.accepted} encounters of batch {batch.id}",
    )


def unbilled_batches(session: Session, before: datetime, limit: int) -> list[EncounterBatch]:
    """Batches recorded before ``before`` that still hold an encounter not billed, oldest first;
    not those whose sign-off is open (it bills them once approved)."""
    unbilled = select(Encounter.batch_id).where(Encounter.status == EncounterStatus.PRICED)
    return list(
        session.scalars(
            select(EncounterBatch)
            .where(
                EncounterBatch.created_at < before,
                EncounterBatch.id.in_(unbilled),
                ~signing_open(),
            )
            .order_by(EncounterBatch.created_at)
            .limit(limit)
        )
    )
