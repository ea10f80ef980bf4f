"""The milestone run on the time-skipping server, with real activities on SQLite."""

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from temporalio.client import WorkflowFailureError

from db.models import AuditEvent, Decision, InvoiceLine, Milestone, Notification, RetentionEntry
from tests.workflows.conftest import Harness
from workflows.milestone_run import MilestoneRun


def audit_kinds(h: Harness, run_id: str) -> list[str]:
    with h.sessions() as session:
        return list(
            session.scalars(
                select(AuditEvent.kind).where(AuditEvent.run_id == run_id).order_by(AuditEvent.seq)
            )
        )


def scheduled(history) -> list[str]:
    """The activities a run's history scheduled, in order."""
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]


def lines(h: Harness, run_id: str) -> list[tuple[str, int]]:
    with h.sessions() as session:
        rows = session.scalars(select(InvoiceLine).where(InvoiceLine.run_id == run_id)).all()
        return sorted((line.kind, line.amount_minor) for line in rows)


async def test_both_approvals_bill_the_milestone_with_retention_withheld(harness: Harness):
    run = await harness.trigger("phase-1", {"p95_latency_ms": "212"})
    await harness.wait_for_stage(run, "awaiting_approval")
    await harness.decide(run, "delivery_lead", "lead")
    await harness.decide(run, "client_ap", "client")

    result = await harness.finish(run)

    assert result.stage == "billed"
    assert (
        result.amounts.gross_minor,
        result.amounts.retention_minor,
        result.amounts.net_minor,
    ) == (3_000_000, 300_000, 2_700_000)
    assert [d.via for d in result.decisions] == ["approver", "approver"]
    assert lines(harness, run.id) == [("milestone", 3_000_000), ("retention_withheld", -300_000)]
    with harness.sessions() as session:
        milestone = session.get_one(Milestone, harness.milestone_id("phase-1"))
        assert (milestone.status, milestone.billed_minor, milestone.open_run_id) == (
            "accepted",
            3_000_000,
            None,
        )
        assert session.scalars(select(RetentionEntry.amount_minor)).all() == [300_000]
    assert audit_kinds(harness, run.id) == [
        "trigger_received",
        "criteria_evaluated",
        "stage_changed",
        "decision",
        "decision",
        "stage_changed",
        "invoice_line_posted",
        "invoice_line_posted",
        "retention_held",
        "milestone_accepted",
    ]


async def test_a_billed_run_changes_stage_in_the_activities_that_open_and_bill_it(
    harness: Harness,
):
    run = await harness.trigger("phase-1")
    await harness.wait_for_stage(run, "awaiting_approval")
    await harness.decide(run, "delivery_lead", "lead")
    await harness.decide(run, "client_ap", "client")

    assert (await harness.finish(run)).stage == "billed"

    history = await run.fetch_history()
    activities = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    # The final approval is recorded by post_billing, committed before the lines.
    assert activities == ["open_run", "record_decision", "post_billing"]
    assert audit_kinds(harness, run.id) == [
        "trigger_received",
        "criteria_evaluated",
        "stage_changed",  # awaiting approval, in open_run
        "decision",
        "decision",
        "stage_changed",  # billing, in post_billing
        "invoice_line_posted",
        "invoice_line_posted",
        "retention_held",
        "milestone_accepted",
    ]
    with harness.sessions() as session:
        first_notice = session.scalar(
            select(Notification.kind)
            .where(Notification.run_id == run.id)
            .order_by(Notification.id)
            .limit(1)
        )
    assert first_notice == "approval_requested"


async def test_a_rejection_closes_the_run_without_a_charge(harness: Harness):
    run = await harness.trigger("phase-1")
    await harness.decide(run, "delivery_lead", "lead")
    await harness.decide(run, "client_ap", "client", "reject", "Cutover plan lacks rollback")

    result = await harness.finish(run)

    assert (result.stage, result.outcome) == ("rejected", "rejected")
    assert "Cutover plan lacks rollback" in result.outcome_detail
    assert lines(harness, run.id) == []
    with harness.sessions() as session:
        milestone = session.get_one(Milestone, harness.milestone_id("phase-1"))
        assert (milestone.status, milestone.open_run_id) == ("rejected", None)


async def test_a_decision_by_someone_without_the_role_is_audited_and_ignored(harness: Harness):
    run = await harness.trigger("phase-1")
    await harness.decide(run, "client_ap", "stranger")
    await harness.decide(run, "client_ap", "client_backup")  # not escalated yet
    await harness.decide(run, "delivery_lead", "lead")
    await harness.decide(run, "client_ap", "client")

    result = await harness.finish(run)

    assert result.stage == "billed"
    assert [(d.role, d.via) for d in result.decisions] == [
        ("delivery_lead", "approver"),
        ("client_ap", "approver"),
    ]
    assert audit_kinds(harness, run.id).count("decision_ignored") == 2


async def test_reminder_then_escalation_lets_an_escalation_contact_approve(harness: Harness):
    run = await harness.trigger("phase-1")
    status = await harness.wait_for_stage(run, "awaiting_approval")
    await harness.decide(run, "delivery_lead", "lead")
    escalate_at = datetime.fromisoformat(status.deadlines["escalate_at"])
    await harness.skip(escalate_at - await harness.env.get_current_time() + timedelta(minutes=1))
    escalated = await run.query(MilestoneRun.status)
    assert escalated.escalated_roles == ["client_ap"]

    await harness.decide(run, "client_ap", "client_backup")
    result = await harness.finish(run)

    assert result.stage == "billed"
    assert (result.decisions[-1].role, result.decisions[-1].via) == ("client_ap", "escalation")
    kinds = audit_kinds(harness, run.id)
    assert (
        kinds.index("reminder_sent") < kinds.index("escalated") < kinds.index("invoice_line_posted")
    )
    with harness.sessions() as session:
        outbox = session.execute(
            select(Notification.kind, Notification.recipient_id).where(
                Notification.run_id == run.id,
                Notification.kind.in_(("reminder", "escalation")),
            )
        ).all()
    assert sorted(outbox) == sorted(
        [("reminder", harness.people["client"]), ("escalation", harness.people["client_backup"])]
    )


async def test_a_silent_client_is_deemed_to_accept_after_five_business_days(harness: Harness):
    run = await harness.trigger("phase-1")
    status = await harness.wait_for_stage(run, "awaiting_approval")
    await harness.decide(run, "delivery_lead", "lead")

    result = await harness.finish(run)

    deemed = result.decisions[-1]
    assert (deemed.role, deemed.via, deemed.principal_id) == ("client_ap", "deemed", None)
    deadline = datetime.fromisoformat(status.deadlines["deemed_acceptance_at"])
    assert timedelta(0) <= datetime.fromisoformat(deemed.at) - deadline < timedelta(seconds=1)
    assert result.stage == "billed"


async def test_a_run_nobody_acts_on_expires(harness: Harness):
    run = await harness.trigger("phase-1")

    result = await harness.finish(run)

    assert (result.stage, result.outcome) == ("expired", "expired")
    assert "delivery_lead" in result.outcome_detail
    assert [d.via for d in result.decisions] == ["deemed"]
    assert lines(harness, run.id) == []


async def test_an_automatic_trigger_whose_criteria_fail_closes_and_names_the_criterion(
    harness: Harness,
):
    run = await harness.trigger("phase-2", {"error_rate_pct": "1.4"})

    result = await harness.finish(run)

    assert (result.stage, result.outcome) == ("rejected", "criteria_failed")
    assert "errors: 1.4 <= 1" in result.outcome_detail
    assert lines(harness, run.id) == []


async def test_a_dependant_waits_for_its_upstream_and_bills_once_it_is_accepted(harness: Harness):
    phase2 = await harness.trigger("phase-2", {"error_rate_pct": "0.4"})
    await harness.decide(phase2, "delivery_lead", "lead")
    await harness.decide(phase2, "client_ap", "client")
    waiting = await harness.wait_for_stage(phase2, "waiting_on_dependency")
    assert waiting.waiting_on == ["phase-1"]
    await harness.decide(phase2, "client_ap", "client", "reject", "Too late to object")

    phase1 = await harness.trigger("phase-1")
    await harness.decide(phase1, "delivery_lead", "lead")
    await harness.decide(phase1, "client_ap", "client")
    assert (await harness.finish(phase1)).stage == "billed"

    result = await harness.finish(phase2)
    assert result.stage == "billed"
    assert lines(harness, phase2.id) == [("milestone", 4_000_000), ("retention_withheld", -400_000)]
    kinds = audit_kinds(harness, phase2.id)
    assert "dependency_wait" in kinds
    assert kinds.count("decision_ignored") == 1  # the late rejection changed nothing
    # Billing waited on its upstream, so the final approval was recorded when it was given.
    assert scheduled(phase2_history := await phase2.fetch_history()).count("record_decision") == 2
    assert scheduled(phase2_history)[-1] == "post_billing"


async def test_the_final_approval_stays_recorded_when_billing_is_refused(harness: Harness):
    run = await harness.trigger("phase-1")
    await harness.wait_for_stage(run, "awaiting_approval")
    with harness.sessions.begin() as session:  # as if billed in full meanwhile
        milestone = session.scalar(select(Milestone).where(Milestone.key == "phase-1"))
        assert milestone is not None
        milestone.accepted_percent = "100"
    await harness.decide(run, "delivery_lead", "lead")
    await harness.decide(run, "client_ap", "client")

    with pytest.raises(WorkflowFailureError) as failure:
        await run.result()
    await harness.replay(run)

    assert "post_billing gave up (BillingConflict)" in str(failure.value.cause)
    assert (await run.query(MilestoneRun.status)).stage == "failed"
    with harness.sessions() as session:
        recorded = session.scalars(
            select(Decision.role).where(Decision.run_id == run.id).order_by(Decision.id)
        ).all()
    assert recorded == ["delivery_lead", "client_ap"]
    assert audit_kinds(harness, run.id).count("decision") == 2
    assert lines(harness, run.id) == []


async def test_a_kpi_gated_dependency_that_missed_its_kpi_makes_the_run_ineligible(
    harness: Harness,
):
    phase1 = await harness.trigger("phase-1")
    await harness.decide(phase1, "delivery_lead", "lead")
    await harness.decide(phase1, "client_ap", "client")
    await harness.finish(phase1)
    phase2 = await harness.trigger("phase-2", {"error_rate_pct": "0.9"})
    await harness.decide(phase2, "delivery_lead", "lead")
    await harness.decide(phase2, "client_ap", "client")
    assert (await harness.finish(phase2)).stage == "billed"

    phase3 = await harness.trigger("phase-3")
    await harness.decide(phase3, "delivery_lead", "lead")
    await harness.decide(phase3, "client_ap", "client")
    result = await harness.finish(phase3)

    assert (result.stage, result.outcome) == ("ineligible", "ineligible")
    assert "error_rate_pct" in result.outcome_detail and "0.9" in result.outcome_detail
    assert lines(harness, phase3.id) == []
    with harness.sessions() as session:
        assert session.get_one(Milestone, harness.milestone_id("phase-3")).status == "ineligible"


async def test_partial_acceptance_at_90_then_100_percent_bills_exactly_the_fee(harness: Harness):
    with harness.sessions.begin() as session:
        milestone = session.get_one(Milestone, harness.milestone_id("phase-1"))
        milestone.allow_partial, milestone.fee_minor = True, 3_333_333
    bills = []
    for percent in ("90", "100"):
        run = await harness.trigger("phase-1", percent=percent)
        await harness.decide(run, "delivery_lead", "lead")
        await harness.decide(run, "client_ap", "client")
        bills.append((await harness.finish(run)).amounts)

    assert [(b.gross_minor, b.retention_minor) for b in bills] == [
        (3_000_000, 300_000),
        (333_333, 33_333),
    ]
    with harness.sessions() as session:
        milestone = session.get_one(Milestone, harness.milestone_id("phase-1"))
        assert (milestone.status, milestone.billed_minor, milestone.retention_held_minor) == (
            "accepted",
            3_333_333,
            333_333,
        )
