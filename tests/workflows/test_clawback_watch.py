"""The clawback watch on the time-skipping server: a billed bonus is watched for its window, a
breaching KPI report claws it back (a credit line on a draft, a credit note on a finalized
invoice), and a window that passes cleanly ends the watch."""

import asyncio
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Replayer

from activities.documents import finalize_invoice
from db.models import AuditEvent, CreditNote, CreditNoteLine, Invoice, InvoiceLine, KpiReport
from domain.times import iso
from tests.workflows.conftest import HISTORIES, RECORD_TO, Harness
from tests.workflows.test_bonus import with_bonus
from worker import WORKFLOWS
from workflows.clawback_watch import ClawbackWatch, watch_id_for
from workflows.watch_contracts import KpiReportSignal, WatchInput, WatchStatus

Watch = WorkflowHandle[ClawbackWatch, WatchStatus]


@dataclass
class Bonus:
    milestone_id: str
    run: WorkflowHandle
    watch: Watch


async def billed_bonus(harness: Harness) -> Bonus:
    """Bill the launch bonus (error rate 0.4% at launch) and return its running watch.

    Its run is finished (and replayed) only after the watch: awaiting a run's result lets the
    time-skipping server run ahead, to the end of the watch's window.
    """
    milestone_id = with_bonus(harness)
    run = await harness.trigger("launch-bonus", {"error_rate_pct": "0.4"})
    await harness.wait_for_stage(run, "billed")
    watch = harness.env.client.get_workflow_handle_for(
        ClawbackWatch.run, watch_id_for(milestone_id)
    )
    await watch_reports(watch, 0)
    return Bonus(milestone_id, run, watch)


async def report(harness: Harness, watch: Watch, milestone_id: str, **kpis: str) -> str:
    """Store a KPI report and signal it, as POST /v1/milestones/{id}/kpi-reports does."""
    received_at = iso(await harness.env.get_current_time())
    with harness.sessions.begin() as session:
        row = KpiReport(
            id=f"kpr_{uuid.uuid4().hex[:20]}",
            milestone_id=milestone_id,
            idempotency_key=str(uuid.uuid4()),
            body_hash="test",
            body={"kpis": kpis, "evidence_ids": [], "source": "monitoring", "note": None},
            watch_id=watch.id,
            actor="integration:itk_test",
        )
        session.add(row)
    await watch.signal(ClawbackWatch.report, KpiReportSignal(row.id, kpis, received_at))
    return row.id


async def watch_reports(watch: Watch, count: int) -> WatchStatus:
    """The watch's status once it has checked `count` reports (and its window is known); the
    billed run starts its watch in an activity after billing, so it may not exist yet."""
    status = None
    for _ in range(200):
        try:
            status = await watch.query(ClawbackWatch.status)
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
        else:
            if len(status.reports) >= count and status.window_ends_at:
                return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"the watch never checked {count} reports: {status}")


async def finish(harness: Harness, bonus: Bonus, record_as: str | None = None) -> WatchStatus:
    """The watch's result, once its history and then its run's replay deterministically; with
    ``TOLLGATE_RECORD_HISTORIES=1`` its history is saved as ``histories/<record_as>.json``
    unless that exists (a committed history is never recorded again)."""
    result = await bonus.watch.result()
    history = await bonus.watch.fetch_history()
    await Replayer(workflows=WORKFLOWS).replay_workflow(history)
    path = HISTORIES / f"{record_as}.json"
    if record_as is not None and RECORD_TO and not path.exists():
        path.write_text(history.to_json())
    assert (await harness.finish(bonus.run)).stage == "billed"
    return result


def watch_events(harness: Harness, watch: Watch) -> list[AuditEvent]:
    with harness.sessions() as session:
        return list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.run_id == watch.id).order_by(AuditEvent.seq)
            )
        )


def outcome_of(harness: Harness, report_id: str) -> str:
    with harness.sessions() as session:
        return session.get_one(KpiReport, report_id).outcome


async def test_a_breaching_report_30_days_later_claws_the_bonus_back_in_full_on_the_draft(
    harness: Harness,
):
    bonus = await billed_bonus(harness)
    milestone_id, watch = bonus.milestone_id, bonus.watch
    await harness.skip(timedelta(days=10))
    kept = await report(harness, watch, milestone_id, error_rate_pct="0.3")
    await watch_reports(watch, 1)
    await harness.skip(timedelta(days=20))
    missing = await report(harness, watch, milestone_id, p95_latency_ms="180")
    breach = await report(harness, watch, milestone_id, error_rate_pct="0.9")

    result = await finish(harness, bonus, "clawback_watch_in_one_history")

    assert result.stage == "clawed_back"
    assert [(r.report_id, r.outcome) for r in result.reports] == [
        (kept, "ok"),
        (missing, "ignored"),
        (breach, "breach"),
    ]
    assert "error_rate_pct 0.9 breaks error_rate_pct <= 0.5" in result.detail
    assert (result.clawback_minor, result.credit_note_id) == (500_000, None)
    assert [outcome_of(harness, r) for r in (kept, missing, breach)] == ["ok", "ignored", "breach"]
    with harness.sessions() as session:
        credit = session.get_one(InvoiceLine, result.invoice_line_id)
        assert (credit.kind, credit.amount_minor, credit.milestone_id) == (
            "credit",
            -500_000,
            milestone_id,
        )
        assert credit.details["clawback_percent"] == "100"
        invoice = session.get_one(Invoice, credit.invoice_id)
        lines = session.scalars(
            select(InvoiceLine.amount_minor).where(InvoiceLine.invoice_id == invoice.id)
        ).all()
        assert invoice.status == "draft"
        assert invoice.id == result.invoice_id
        assert invoice.total_minor == sum(lines) == 500_000 - 50_000 - 500_000
    events = watch_events(harness, watch)
    assert [e.kind for e in events] == [
        "clawback_watch_started",
        "kpi_report_checked",
        "kpi_report_checked",
        "kpi_report_checked",
        "clawback_issued",
    ]
    issued = events[-1].data
    assert (issued["amount_minor"], issued["invoice_line_id"]) == (500_000, credit.id)
    assert issued["report"]["kpis"] == {"error_rate_pct": "0.9"}
    assert issued["report"]["source"] == "monitoring"


async def test_a_breach_after_the_invoice_is_finalized_issues_a_clawback_credit_note(
    harness: Harness,
):
    bonus = await billed_bonus(harness)
    milestone_id, watch = bonus.milestone_id, bonus.watch
    with harness.sessions.begin() as session:
        bonus_line = session.scalars(
            select(InvoiceLine).where(
                InvoiceLine.milestone_id == milestone_id, InvoiceLine.kind == "milestone"
            )
        ).one()
        now = await harness.env.get_current_time()
        finalize_invoice(session, bonus_line.invoice_id, issuer_prefix="TG", actor="admin", at=now)
    await harness.skip(timedelta(days=30))
    await report(harness, watch, milestone_id, error_rate_pct="0.9")

    result = await finish(harness, bonus)

    assert (result.stage, result.clawback_minor, result.invoice_line_id) == (
        "clawed_back",
        500_000,
        None,
    )
    with harness.sessions() as session:
        note = session.get_one(CreditNote, result.credit_note_id)
        assert (note.source, note.total_minor, note.invoice_id, note.dedupe_key) == (
            "clawback",
            -500_000,
            bonus_line.invoice_id,
            watch.id,
        )
        assert note.number.startswith("TG-CN-")
        credited = session.scalars(
            select(CreditNoteLine.invoice_line_id).where(CreditNoteLine.credit_note_id == note.id)
        ).all()
        assert credited == [bonus_line.id]
        credit_lines = session.scalar(
            select(func.count()).select_from(InvoiceLine).where(InvoiceLine.kind == "credit")
        )
        assert credit_lines == 0
        # The credit note's PDF is recorded and audited in the bonus's engagement chain.
        issued = session.scalars(select(AuditEvent).where(AuditEvent.kind == "document_issued"))
        assert [(e.data["number"], e.data["sha256"]) for e in issued] == [
            (note.number, note.document_sha256)
        ]
    assert watch_events(harness, watch)[-1].data["credit_note_id"] == note.id


async def test_a_window_that_passes_cleanly_ends_the_watch_and_says_so(harness: Harness):
    bonus = await billed_bonus(harness)
    milestone_id, watch = bonus.milestone_id, bonus.watch
    status = await watch.query(ClawbackWatch.status)
    await harness.skip(timedelta(days=45))
    kept = await report(harness, watch, milestone_id, error_rate_pct="0.5")
    await watch_reports(watch, 1)
    await harness.skip(timedelta(days=46))

    result = await finish(harness, bonus)

    assert (result.stage, result.clawback_minor) == ("clean", None)
    assert [(r.report_id, r.outcome) for r in result.reports] == [(kept, "ok")]
    assert "window passed cleanly" in result.detail
    with harness.sessions() as session:
        billed_at = session.scalar(
            select(AuditEvent.at).where(
                AuditEvent.run_id == bonus.run.id, AuditEvent.kind == "milestone_accepted"
            )
        )
    assert datetime.fromisoformat(status.window_ends_at) == billed_at + timedelta(days=90)
    closed = watch_events(harness, watch)[-1]
    assert closed.kind == "clawback_window_closed"
    assert closed.data["detail"] == "window passed cleanly"
    late = KpiReportSignal("kpr_late", {"error_rate_pct": "2"}, closed.at.isoformat())
    with pytest.raises(RPCError):  # the API answers 409: the watch is over
        await watch.signal(ClawbackWatch.report, late)
    with harness.sessions() as session:
        credits = session.scalar(
            select(func.count()).select_from(InvoiceLine).where(InvoiceLine.kind == "credit")
        )
    assert credits == 0


async def test_a_watch_with_many_reports_continues_as_new_and_keeps_every_report(
    harness: Harness,
):
    bonus = await billed_bonus(harness)
    started = (await bonus.watch.fetch_history()).events[0]
    payloads = started.workflow_execution_started_event_attributes.input.payloads
    [inp] = await harness.env.client.data_converter.decode(payloads, [WatchInput])
    small = replace(inp, watch_id=f"{inp.watch_id}-small", reports_per_run=2)
    watch = await harness.env.client.start_workflow(
        ClawbackWatch.run, small, id=small.watch_id, task_queue=harness.task_queue
    )
    first_run = watch.result_run_id

    sent = [
        await report(harness, watch, bonus.milestone_id, error_rate_pct="0.3") for _ in range(5)
    ]
    # Read from the books, not by querying a watch that may be between two runs.
    for _ in range(400):
        if all(outcome_of(harness, r) == "ok" for r in sent):
            break
        await asyncio.sleep(0.05)
    await harness.skip(timedelta(days=91))
    result = await watch.result()

    assert result.stage == "clean"
    assert [(r.report_id, r.outcome) for r in result.reports] == [(r, "ok") for r in sent]
    first = await harness.env.client.get_workflow_handle(watch.id, run_id=first_run).describe()
    assert first.status == WorkflowExecutionStatus.CONTINUED_AS_NEW
    history = await harness.env.client.get_workflow_handle(
        watch.id, run_id=first_run
    ).fetch_history()
    await Replayer(workflows=WORKFLOWS).replay_workflow(history)
    recorded = HISTORIES / "clawback_watch_continues_as_new.json"
    if RECORD_TO and not recorded.exists():
        recorded.write_text(history.to_json())
    await finish(harness, bonus)
