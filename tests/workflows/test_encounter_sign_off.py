"""EncounterSignOff on the time-skipping server with the real activities, on both databases: a
batch of an engagement that signs encounters off waits for the dual sign-off, bills in chunks
once both roles approve (or the silent client is deemed to accept), and a rejected or expired
batch bills nothing and its encounters say so."""

from datetime import datetime, timedelta

from sqlalchemy import func, select
from temporalio.client import WorkflowHandle
from temporalio.converter import value_to_type

from db.encounters import Encounter, EncounterBatch
from db.models import AuditEvent, InvoiceLine, Run
from services.encounter_sign_offs import sign_off_run_id, start_sign_off
from tests.encounter_setup import encounter_engagement, priced_batch
from tests.workflows.conftest import Harness
from workflows.encounter_sign_off import EncounterSignOff, EncountersInput


async def signed_batch(harness: Harness, n: int, chunk_size: int = 500) -> WorkflowHandle:
    """A batch of ``n`` encounters at 2,500 each, its sign-off started as the upload starts it."""
    engagement = encounter_engagement(harness.sessions, harness.people, 2_500, "sign_off")
    batch_id = priced_batch(harness.sessions, engagement["id"], n)
    with harness.sessions() as session:
        run = session.get_one(Run, sign_off_run_id(session.get_one(EncounterBatch, batch_id)))
        inp = value_to_type(EncountersInput, run.snapshot)
    inp.chunk_size = chunk_size
    await start_sign_off(harness.env.client, harness.task_queue, inp)
    return harness.env.client.get_workflow_handle_for(EncounterSignOff.run, inp.run_id)


def statuses(harness: Harness, batch_id: str) -> dict[str, int]:
    with harness.sessions() as session:
        rows = session.execute(
            select(Encounter.status, func.count())
            .where(Encounter.batch_id == batch_id)
            .group_by(Encounter.status)
        )
        return {status: count for status, count in rows}


def encounter_lines(harness: Harness) -> int:
    with harness.sessions() as session:
        return session.scalar(
            select(func.count()).select_from(InvoiceLine).where(InvoiceLine.kind == "encounter")
        )


async def test_a_batch_bills_in_chunks_only_once_both_roles_sign_it_off(harness: Harness):
    run = await signed_batch(harness, 120, chunk_size=50)
    status = await harness.wait_for_stage(run, "awaiting_approval")
    batch_id = status.details["batch_id"]
    assert (status.kind, status.details["count"], status.details["total_minor"]) == (
        "encounters",
        120,
        300_000,
    )
    assert len(status.details["encounter_ids_sha256"]) == 64
    assert statuses(harness, batch_id) == {"pending_sign_off": 120}

    await harness.decide(run, "delivery_lead", "lead")
    assert (await harness.wait_for_stage(run, "awaiting_approval")).pending_roles == ["client_ap"]
    assert encounter_lines(harness) == 0
    await harness.decide(run, "client_ap", "client")
    result = await harness.finish(run)

    assert result.stage == "billed"
    assert (result.details["billed"], result.details["billed_minor"]) == (120, 300_000)
    assert statuses(harness, batch_id) == {"billed": 120}
    assert encounter_lines(harness) == 120
    with harness.sessions() as session:
        assert session.get_one(Run, run.id).invoice_id == result.invoice_id is not None
        kinds = session.scalars(
            select(AuditEvent.kind)
            .where(AuditEvent.engagement_id == result.engagement_id)
            .order_by(AuditEvent.seq)
        ).all()
    assert kinds.count("encounters_billed") == 3  # 50 + 50 + 20
    assert kinds.index("encounters_sign_off_requested") < kinds.index("encounters_billed")
    assert kinds[-1] == "encounters_signed_off"


async def test_a_batch_the_client_leaves_unanswered_is_deemed_accepted_and_bills(
    harness: Harness,
):
    run = await signed_batch(harness, 3)
    status = await harness.wait_for_stage(run, "awaiting_approval")
    await harness.decide(run, "delivery_lead", "lead")

    deemed_at = datetime.fromisoformat(status.deadlines["deemed_acceptance_at"])
    await harness.skip(deemed_at - await harness.env.get_current_time() + timedelta(minutes=1))
    result = await harness.finish(run)

    assert result.stage == "billed"
    assert [(d.role, d.via) for d in result.decisions] == [
        ("delivery_lead", "approver"),
        ("client_ap", "deemed"),
    ]
    assert statuses(harness, status.details["batch_id"]) == {"billed": 3}


async def test_a_rejected_batch_bills_nothing_and_its_encounters_are_marked_rejected(
    harness: Harness,
):
    run = await signed_batch(harness, 4)
    status = await harness.wait_for_stage(run, "awaiting_approval")

    await harness.decide(run, "client_ap", "client", "reject", "not our patients")
    result = await harness.finish(run)

    assert (result.stage, result.invoice_id) == ("rejected", None)
    assert statuses(harness, status.details["batch_id"]) == {"rejected": 4}
    assert encounter_lines(harness) == 0


async def test_a_batch_nobody_signs_expires_and_bills_nothing(harness: Harness):
    run = await signed_batch(harness, 2)
    status = await harness.wait_for_stage(run, "awaiting_approval")

    expire_at = datetime.fromisoformat(status.deadlines["expire_at"])
    await harness.skip(expire_at - await harness.env.get_current_time() + timedelta(minutes=1))
    result = await harness.finish(run)

    assert result.stage == "expired"  # the delivery lead is never deemed to accept
    assert statuses(harness, status.details["batch_id"]) == {"expired": 2}
    assert encounter_lines(harness) == 0
