"""Activities of the clawback watch: its window, each KPI report's verdict, and the clawback.

The clawback credits the bonus's own invoice line: with a credit note when that invoice is
finalized (`issue_credit_note`), or with a negative ``credit`` line on the same invoice while it
is still a draft, since a draft is not yet a document a credit note could refer to.
"""

from contextlib import suppress
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities.approval import at_, calendar_of
from activities.audit import SYSTEM_ACTOR, run_audit
from activities.credit_notes import CreditLine, credited_so_far, issue_credit_note
from activities.delivery import Notifier
from db.audit import evidence_refs
from db.models import CreditNote, Invoice, InvoiceLine, KpiReport, new_id
from domain.bonus import check_report
from domain.calendar import Span, deadline_after, describe_span, parse_span
from domain.credit import clawback_minor, creditable_minor
from domain.money import format_minor
from domain.times import iso
from services.document_notices import Clawback, clawback_issued, queue_document
from workflows import search_attributes as sa
from workflows.clawback_watch import ClawbackWatch
from workflows.watch_contracts import (
    CheckReport,
    ClawBack,
    ClawedBack,
    CloseWindow,
    KpiReportSignal,
    OpenWindow,
    ReportOutcome,
    WatchInput,
    WindowOpened,
)


def window_label(span: Span, start: datetime, end: datetime) -> str:
    """The window timer's summary: "clawback window (90 days)", or the span as written."""
    whole_days = span.iso is not None and (end - start) == timedelta(days=(end - start).days)
    length = f"{(end - start).days} days" if whole_days else describe_span(span)
    return f"clawback window ({length})"


class ClawbackActivities:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        issuer_prefix: str,
        notifier: Notifier | None = None,
    ) -> None:
        self._sessions = session_factory
        # Clawback credit notes are numbered in the same series as every other credit note:
        # the configured TOLLGATE_ISSUER_PREFIX unless the worker passes its own.
        self._issuer_prefix = issuer_prefix
        self._notifier = notifier or Notifier()

    def all(self) -> list[Any]:
        return [
            self.start_clawback_watch,
            self.open_clawback_window,
            self.check_kpi_report,
            self.claw_back,
            self.close_clawback_window,
        ]

    @activity.defn(name="start_clawback_watch")
    async def start_clawback_watch(self, watch: WatchInput) -> None:
        """Start the billed bonus's watch, once: a retry finds it started (or even finished)."""
        kpi = watch.clawback["kpi"]
        # A watch that already ran (a retried activity) is left as it is: one per bonus.
        with suppress(WorkflowAlreadyStartedError):
            await activity.client().start_workflow(
                ClawbackWatch.run,
                watch,
                id=watch.watch_id,
                task_queue=activity.info().task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(sa.ENGAGEMENT_ID, watch.engagement_id),
                        SearchAttributePair(sa.CUSTOMER_ID, watch.customer_id),
                        SearchAttributePair(sa.MILESTONE_KEY, watch.milestone_key),
                        SearchAttributePair(sa.STAGE, "watching"),
                    ]
                ),
                static_summary=f"clawback watch: the {watch.milestone_key} bonus must keep "
                f"{kpi['metric']} {kpi['op']} {kpi['threshold']} or "
                f"{watch.clawback['percent']}% is clawed back",
            )

    @activity.defn(name="open_clawback_window")
    def open_clawback_window(self, req: OpenWindow) -> WindowOpened:
        watch = req.watch
        span = parse_span(watch.clawback["window"])
        assert span is not None, "a clawback always has a window"
        start = at_(watch.billed_at)
        ends = deadline_after(start, span, calendar_of(watch.calendar))
        with self._sessions.begin() as session:
            run_audit(
                session,
                watch,
                kind="clawback_watch_started",
                at=at_(req.at),
                data={
                    "watch_id": watch.watch_id,
                    "bonus_run_id": watch.bonus_run_id,
                    "billed_minor": watch.billed_minor,
                    "currency": watch.currency,
                    "clawback": watch.clawback,
                    "window_ends_at": iso(ends),
                },
                dedupe_key=f"{watch.watch_id}:started",
            )
        return WindowOpened(window_ends_at=iso(ends), label=window_label(span, start, ends))

    @activity.defn(name="check_kpi_report")
    def check_kpi_report(self, req: CheckReport) -> ReportOutcome:
        watch, report = req.watch, req.report
        kpi = watch.clawback["kpi"]
        if req.ignore_reason is not None:
            outcome, detail = "ignored", req.ignore_reason
        else:
            check = check_report(kpi["metric"], kpi["op"], kpi["threshold"], report.kpis)
            outcome, detail = check.outcome, check.detail
        with self._sessions.begin() as session:
            row = session.get(KpiReport, report.report_id)
            if row is not None:
                row.outcome = outcome
            run_audit(
                session,
                watch,
                actor=row.actor if row is not None else SYSTEM_ACTOR,
                kind="kpi_report_checked",
                at=at_(req.at),
                data={
                    "outcome": outcome,
                    "detail": detail,
                    "kpi": kpi,
                    **_report_data(report, row),
                },
                evidence=evidence_refs(session, report.evidence_ids),
                dedupe_key=f"{watch.watch_id}:report:{report.report_id}",
            )
        return ReportOutcome(report.report_id, outcome, detail, report.received_at, req.at)

    @activity.defn(name="claw_back")
    def claw_back(self, req: ClawBack) -> ClawedBack:
        watch, at = req.watch, at_(req.at)
        percent = watch.clawback["percent"]
        owed = clawback_minor(watch.billed_minor, Decimal(percent))
        with self._sessions.begin() as session:
            line = session.scalars(
                select(InvoiceLine).where(
                    InvoiceLine.run_id == watch.bonus_run_id, InvoiceLine.kind == "milestone"
                )
            ).one()
            # Locked like finalization locks it: the invoice is either a draft or a document.
            invoice = session.scalars(
                select(Invoice)
                .where(Invoice.id == line.invoice_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            ).one()
            evidence = evidence_refs(session, req.report.evidence_ids)
            report = _report_data(req.report, session.get(KpiReport, req.report.report_id))
            money = f"{format_minor(owed, watch.currency)} {watch.currency}"
            description = (
                f"Clawback of the {watch.milestone_key} bonus ({percent}%, {money}): {req.breach}"
            )
            details = {
                "clawback_percent": percent,
                "billed_minor": watch.billed_minor,
                "clawback_minor": owed,
                "kpi": watch.clawback["kpi"],
                "breach": req.breach,
                "report_id": req.report.report_id,
                "watch_id": watch.watch_id,
            }
            result = _earlier_clawback(session, watch)
            queued: list[int] = []
            if result is None:
                if invoice.status == "finalized":
                    credit = CreditLine(line.id, owed, description, details)
                    result = _credit_note(
                        session, watch, invoice, line, credit, evidence, at, self._issuer_prefix
                    )
                else:
                    result = _credit_line(session, watch, invoice, line, owed, description, details)
                queued = _clawback_notices(
                    session, watch, invoice, line, result, req.breach, report
                )
            result.detail = description
            if result.amount_minor != owed:
                credited = format_minor(result.amount_minor, watch.currency)
                result.detail += f"; {credited} {watch.currency} credited, all that was left"
            run_audit(
                session,
                watch,
                kind="clawback_issued",
                at=at,
                data={
                    **details,
                    "amount_minor": result.amount_minor,
                    "currency": watch.currency,
                    "invoice_id": invoice.id,
                    "invoice_status": invoice.status,
                    "credit_note_id": result.credit_note_id,
                    "invoice_line_id": result.invoice_line_id,
                    "report": report,
                },
                evidence=evidence,
                dedupe_key=f"{watch.watch_id}:clawback_issued",
            )
        self._notifier.started(queued)
        return result

    @activity.defn(name="close_clawback_window")
    def close_clawback_window(self, req: CloseWindow) -> None:
        with self._sessions.begin() as session:
            run_audit(
                session,
                req.watch,
                kind="clawback_window_closed",
                at=at_(req.at),
                data={
                    "detail": "window passed cleanly",
                    "window_ends_at": req.window_ends_at,
                    "reports_checked": req.reports,
                },
                dedupe_key=f"{req.watch.watch_id}:window_closed",
            )


def _clawback_notices(
    session: Session,
    watch: WatchInput,
    invoice: Invoice,
    line: InvoiceLine,
    result: ClawedBack,
    reason: str,
    report: dict[str, Any],
) -> list[int]:
    """Tell of a clawback just made (nothing, when nothing was left to credit); a retry finds
    the clawback, and these rows with it, already written."""
    note_id, line_id = result.credit_note_id, result.invoice_line_id
    if note_id is None and line_id is None:
        return []
    clawback = Clawback(
        watch=watch,
        invoice=invoice,
        credited=line,
        amount_minor=result.amount_minor,
        credit_note=session.get(CreditNote, note_id) if note_id else None,
        credit_line=session.get(InvoiceLine, line_id) if line_id else None,
        reason=reason,
        report=report,
    )
    return queue_document(session, clawback_issued(session, clawback))


def _earlier_clawback(session: Session, watch: WatchInput) -> ClawedBack | None:
    """The clawback this watch already made (the activity is retried after a lost reply)."""
    note = session.scalar(select(CreditNote).where(CreditNote.dedupe_key == watch.watch_id))
    if note is not None:
        return ClawedBack(-note.total_minor, note.invoice_id, credit_note_id=note.id)
    line = session.scalar(
        select(InvoiceLine).where(
            InvoiceLine.run_id == watch.watch_id, InvoiceLine.kind == "credit"
        )
    )
    if line is not None:
        return ClawedBack(-line.amount_minor, line.invoice_id, invoice_line_id=line.id)
    return None


def _credit_note(
    session: Session,
    watch: WatchInput,
    invoice: Invoice,
    line: InvoiceLine,
    credit: CreditLine,
    evidence: list[dict[str, str]],
    at: datetime,
    issuer_prefix: str,
) -> ClawedBack:
    """A credit note for the clawback, capped at what earlier credit notes left on the line."""
    already = credited_so_far(session, invoice.id).get(line.id, 0)
    amount = min(credit.amount_minor, creditable_minor(line.amount_minor, already))
    if amount == 0:
        return ClawedBack(0, invoice.id)
    note = issue_credit_note(
        session,
        invoice_id=invoice.id,
        lines=[replace(credit, amount_minor=amount)],
        reason=credit.description,
        source="clawback",
        actor=SYSTEM_ACTOR,
        dedupe_key=watch.watch_id,
        at=at,
        issuer_prefix=issuer_prefix,
        evidence=evidence,
    )
    return ClawedBack(amount, invoice.id, credit_note_id=note.id)


def _credit_line(
    session: Session,
    watch: WatchInput,
    invoice: Invoice,
    line: InvoiceLine,
    owed: int,
    description: str,
    details: dict[str, Any],
) -> ClawedBack:
    """A negative ``credit`` line on the bonus's own draft (unique by run id and kind)."""
    if owed == 0:
        return ClawedBack(0, invoice.id)
    credit = InvoiceLine(
        id=new_id("lin"),
        invoice_id=invoice.id,
        kind="credit",
        amount_minor=-owed,
        description=description,
        milestone_id=watch.milestone_id,
        run_id=watch.watch_id,
        evidence=line.evidence,
        details=details,
    )
    session.add(credit)
    invoice.total_minor -= owed
    session.flush()
    return ClawedBack(owed, invoice.id, invoice_line_id=credit.id)


def _report_data(report: KpiReportSignal, row: KpiReport | None) -> dict[str, Any]:
    body = row.body if row is not None else {}
    return {
        "report_id": report.report_id,
        "kpis": report.kpis,
        "received_at": report.received_at,
        "source": body.get("source"),
        "note": body.get("note"),
    }
