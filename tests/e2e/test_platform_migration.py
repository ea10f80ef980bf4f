"""The brief's example end to end, driven through the typed client (``AsyncTollgate``), as an
integrator would: trigger → sign-off → invoice, escrow and audit. Every answer is read into the
API's own response models, so a route that drifts from its model fails here."""

import asyncio
import uuid
from dataclasses import dataclass

import pytest
from sqlalchemy import update

from api.example import SIGNOFF_PDF, platform_migration
from api.models import Customer, Engagement, Principal, RunStatus
from db.models import AuditEvent
from tests.conftest_stack import Stack
from tollgate_client import AsyncTollgate


@dataclass
class Migration:
    """The platform-migration engagement, set up through the client."""

    tollgate: AsyncTollgate
    people: dict[str, Principal]
    customer: Customer
    engagement: Engagement

    def milestone(self, key: str) -> str:
        return next(m.id for m in self.engagement.milestones if m.key == key)

    def as_(self, person: str) -> AsyncTollgate:
        return self.tollgate.with_token(self.people[person].token)

    async def trigger(self, key: str, **fields: object) -> str:
        accepted = await self.tollgate.trigger(
            self.milestone(key), idempotency_key=f"{key}-{uuid.uuid4()}", **fields
        )
        return accepted.run_id

    async def sign_off(self, run_id: str) -> None:
        await self.as_("lead").decide(run_id, "delivery_lead", "approve")
        await self.as_("client").decide(run_id, "client_ap", "approve")

    async def wait_for_stage(self, run_id: str, *stages: str) -> RunStatus:
        for _ in range(300):
            status = await self.tollgate.get_run(run_id)
            if status.stage in stages:
                return status
            await asyncio.sleep(0.1)
        raise AssertionError(f"run {run_id} never reached {stages}; it is {status.stage}")


@pytest.fixture
async def migration(stack: Stack) -> Migration:
    tollgate = AsyncTollgate(str(stack.http.base_url), stack.admin_token, http=stack.http)
    people = {
        name: await tollgate.create_principal(name, f"{name}@example.com")
        for name in ("lead", "client", "lead_backup", "client_backup")
    }
    customer = await tollgate.create_customer("Acme Corp", "USD")
    engagement = await tollgate.create_engagement(
        platform_migration(customer.id, *(people[name].id for name in people))
    )
    return Migration(tollgate, people, customer, engagement)


async def test_phase_one_signed_off_by_both_roles_is_invoiced_with_retention_and_evidence(
    migration: Migration,
):
    tollgate = migration.tollgate
    pdf = await tollgate.upload_evidence(
        SIGNOFF_PDF, "signoff.pdf", content_type="application/pdf", description="Phase 1 sign-off"
    )
    run_id = await migration.trigger(
        "phase-1",
        source="delivery-tracker",
        completion_percent="100",
        kpis={"p95_latency_ms": "212"},
        evidence_ids=[pdf.id],
        external_ref="JIRA-123",
        note="Phase 1 delivered",
    )
    status = await migration.wait_for_stage(run_id, "awaiting_approval")
    assert sorted(status.pending_roles) == ["client_ap", "delivery_lead"]
    assert {c.id: c.passed for c in status.criteria} == {"plan": None, "p95": True}

    lead = await migration.as_("lead").decide(
        run_id, "delivery_lead", "approve", comment="Plan reviewed"
    )
    assert lead.pending_roles == ["client_ap"]
    await migration.as_("client").decide(
        run_id, "client_ap", "approve", comment="Approved for payment"
    )
    billed = await migration.wait_for_stage(run_id, "billed")

    assert billed.amounts is not None
    assert billed.amounts.model_dump() == {
        "gross_minor": 3_000_000,
        "retention_minor": 300_000,
        "net_minor": 2_700_000,
    }
    assert billed.invoice_id is not None
    invoice = await tollgate.get_invoice(billed.invoice_id)
    assert invoice.status == "draft"
    assert [(line.kind, line.amount_minor) for line in invoice.lines] == [
        ("milestone", 3_000_000),
        ("retention_withheld", -300_000),
    ]
    assert invoice.total_minor == 2_700_000
    assert invoice.lines[0].evidence == [{"id": pdf.id, "sha256": pdf.sha256}]
    listed = await tollgate.list_invoices(migration.customer.id)
    assert [i.id for i in listed.items] == [invoice.id]
    assert (await tollgate.invoice_pdf(invoice.id)).startswith(b"%PDF-")

    engagement = await tollgate.get_engagement(migration.engagement.id)
    assert engagement.retention_balance_minor == 300_000
    phase1 = engagement.milestones[0]
    assert (phase1.status, phase1.billed_minor, phase1.retention_held_minor) == (
        "accepted",
        3_000_000,
        300_000,
    )

    trail = [
        event
        async for event in tollgate.items(tollgate.milestone_audit, migration.milestone("phase-1"))
    ]
    kinds = [e.kind for e in trail]
    assert kinds[:2] == ["trigger_received", "criteria_evaluated"]
    assert [e.data["role"] for e in trail if e.kind == "decision"] == [
        "delivery_lead",
        "client_ap",
    ]
    assert kinds.index("invoice_line_posted") > max(
        i for i, k in enumerate(kinds) if k == "decision"
    )
    assert trail[0].evidence == [{"id": pdf.id, "sha256": pdf.sha256}]
    posted = [e for e in trail if e.kind == "invoice_line_posted"]
    assert all(e.evidence[0]["sha256"] == pdf.sha256 for e in posted)
    verify = await tollgate.verify_audit(migration.engagement.id)
    assert verify.ok is True and verify.events >= len(trail)


async def test_phase_two_triggered_early_waits_for_phase_one_and_then_bills(
    migration: Migration,
):
    phase2 = await migration.trigger("phase-2", source="ci", kpis={"error_rate_pct": "0.4"})
    await migration.wait_for_stage(phase2, "awaiting_approval")
    await migration.sign_off(phase2)
    waiting = await migration.wait_for_stage(phase2, "waiting_on_dependency")
    assert waiting.waiting_on == ["phase-1"]
    engagement = await migration.tollgate.get_engagement(migration.engagement.id)
    assert engagement.milestones[1].status == "in_review"

    phase1 = await migration.trigger("phase-1")
    await migration.wait_for_stage(phase1, "awaiting_approval")
    await migration.sign_off(phase1)

    billed = await migration.wait_for_stage(phase2, "billed")
    assert billed.amounts is not None and billed.amounts.gross_minor == 4_000_000
    engagement = await migration.tollgate.get_engagement(migration.engagement.id)
    assert [m.status for m in engagement.milestones] == ["accepted", "accepted", "pending"]
    assert engagement.retention_balance_minor == 700_000


async def test_the_audit_chain_fails_verification_after_a_row_is_altered_by_hand(
    migration: Migration, stack: Stack
):
    tollgate = migration.tollgate
    run_id = await migration.trigger("phase-1")
    await migration.wait_for_stage(run_id, "awaiting_approval")
    await migration.as_("lead").decide(run_id, "delivery_lead", "approve")
    engagement_id = migration.engagement.id
    for _ in range(100):  # the decision's audit event is written by an activity, just after
        trail = [e async for e in tollgate.items(tollgate.engagement_audit, engagement_id)]
        if any(e.kind == "decision" for e in trail):
            break
        await asyncio.sleep(0.05)
    before = await tollgate.verify_audit(engagement_id)
    assert before.ok is True

    with stack.sessions.begin() as session:
        session.execute(
            update(AuditEvent)
            .where(AuditEvent.engagement_id == engagement_id, AuditEvent.seq == 2)
            .values(actor="someone-else")
        )

    after = await tollgate.verify_audit(engagement_id)
    assert after.model_dump() == {"ok": False, "events": before.events, "first_bad_seq": 2}
