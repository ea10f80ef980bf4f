"""The reconciler starts billing an encounter batch whose workflow never started (Temporal was
down at upload, which answered ``"billing": "pending"``), or its sign-off when the engagement
signs encounters off, against a real Temporal and worker."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from db.models import AuditEvent
from services.callers import Caller
from services.encounter_sign_offs import release_signed
from services.encounters import record_upload
from services.reconcile import reconcile
from services.runs import STARTERS
from tests.api.test_encounter_sign_off import signed
from tests.api.test_encounters import batch_rows, new_encounters
from tests.conftest_stack import Stack

ADMIN = Caller("admin", "admin")


async def run_pass(stack: Stack, grace: timedelta = timedelta(0)):
    return await reconcile(stack.sessions, stack.temporal, stack.task_queue, STARTERS, grace=grace)


async def test_a_batch_recorded_but_never_started_is_billed_by_the_reconciler(stack: Stack):
    enc = await new_encounters(stack)
    rows, amounts = batch_rows(5)
    with stack.sessions() as session:  # recorded and committed; no workflow was started
        upload = record_upload(session, ADMIN, enc.engagement["id"], rows, datetime.now(UTC).date())
    assert upload.batch is not None
    batch_id = upload.batch.id

    assert batch_id not in (await run_pass(stack, grace=timedelta(minutes=5))).batches_started
    report = await run_pass(stack)

    assert batch_id in report.batches_started
    assert f"  {batch_id}" in report.lines()
    billed = await enc.billed(batch_id)
    assert (billed["billed"], billed["billed_minor"]) == (5, sum(amounts))
    assert batch_id not in (await run_pass(stack)).batches_started  # started once
    with stack.sessions() as session:
        events = session.scalars(
            select(AuditEvent.data).where(
                AuditEvent.engagement_id == enc.engagement["id"],
                AuditEvent.kind == "encounter_billing_started_late",
            )
        ).all()
    assert [e["batch_id"] for e in events] == [batch_id]


async def test_a_batch_awaiting_sign_off_gets_its_sign_off_started_not_its_billing(stack: Stack):
    example, enc = await signed(stack)
    rows, _ = batch_rows(3)
    with stack.sessions() as session:  # recorded with its run; neither workflow was started
        upload = record_upload(session, ADMIN, enc.engagement["id"], rows, datetime.now(UTC).date())
    assert upload.batch is not None
    run_id = f"{upload.batch.workflow_id}:sign-off"

    report = await run_pass(stack)

    assert run_id in report.started and upload.batch.id not in report.batches_started
    status = await example.wait_for_stage(run_id, "awaiting_approval")
    assert (status["kind"], status["details"]["count"]) == ("encounters", 3)


async def test_a_signed_off_batch_its_sign_off_is_billing_is_left_to_the_sign_off(stack: Stack):
    _, enc = await signed(stack)
    rows, _ = batch_rows(2)
    with stack.sessions() as session:
        upload = record_upload(session, ADMIN, enc.engagement["id"], rows, datetime.now(UTC).date())
        assert upload.batch is not None
        batch_id = upload.batch.id
        release_signed(session, batch_id)  # approved: its run is billing them
        session.commit()

    report = await run_pass(stack)

    assert batch_id not in report.batches_started
