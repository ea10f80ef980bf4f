"""The clawback watch: one durable workflow per billed bonus under clawback.

watching → clawed_back (the first KPI report that breaks the KPI within the window) or clean
(the window passed). Started for the bonus's run, once it is billed, by an activity (id
``clawback-<milestone id>``); it outlives the run. Reports arrive as ``report`` signals and are
queued; each is checked by an activity, and any that arrives once the watch no longer acts is
audited as ignored. Decisions only.
"""

from dataclasses import replace
from datetime import datetime, timedelta

from temporalio import workflow

from workflows.issued_documents import record_document

with workflow.unsafe.imports_passed_through():
    from domain.money import format_minor
    from domain.times import iso
    from workflows import search_attributes as sa
    from workflows.activity_calls import activity_caller
    from workflows.watch_contracts import (
        CheckReport,
        ClawBack,
        ClawedBack,
        CloseWindow,
        KpiReportSignal,
        OpenWindow,
        QueuedReport,
        ReportOutcome,
        WatchCarry,
        WatchInput,
        WatchStatus,
        WindowOpened,
    )

CONTINUE_AS_NEW = "clawback-watch-continues-as-new"


def watch_id_for(milestone_id: str) -> str:
    """One watch per bonus milestone: a bonus under clawback is billed once, whole."""
    return f"clawback-{milestone_id}"


@workflow.defn
class ClawbackWatch:
    # Business errors: retrying cannot fix them.
    _activity = staticmethod(activity_caller("CreditRefused"))

    def __init__(self) -> None:
        self._status: WatchStatus | None = None
        self._inbox: list[tuple[str, KpiReportSignal]] = []

    @workflow.signal
    def report(self, signal: KpiReportSignal) -> None:
        """Queued with its arrival time, then checked by the main loop (never acted on here)."""
        self._inbox.append((iso(workflow.now()), signal))

    @workflow.query
    def status(self) -> WatchStatus:
        assert self._status is not None
        return self._status

    @workflow.run
    async def run(self, inp: WatchInput) -> WatchStatus:
        self._inp = inp
        status = self._status = WatchStatus(
            watch_id=inp.watch_id,
            engagement_id=inp.engagement_id,
            milestone_id=inp.milestone_id,
            bonus_run_id=inp.bonus_run_id,
            billed_minor=inp.billed_minor,
            currency=inp.currency,
            percent=inp.clawback["percent"],
            kpi=inp.clawback["kpi"],
        )
        if inp.carried is None:
            window: WindowOpened = await self._activity(
                "open_clawback_window",
                OpenWindow(watch=inp, at=iso(workflow.now())),
                WindowOpened,
                "compute the clawback window",
            )
        else:  # continued as new: the window and the reports so far come along
            window = inp.carried.window
            status.reports = list(inp.carried.reports)
            self._inbox[:0] = [(q.arrived_at, q.report) for q in inp.carried.inbox]
        status.window_ends_at = window.window_ends_at
        self._show()
        ends = datetime.fromisoformat(window.window_ends_at)
        checked_here = 0
        while status.stage == "watching":
            if self._inbox:
                await self._check(*self._inbox.pop(0), ends)
                checked_here += 1
                if status.stage == "watching" and self._history_is_long(checked_here):
                    await self._continue_as_new(window)
                continue
            remaining = ends - workflow.now()
            if remaining <= timedelta(0):
                break
            try:
                await workflow.wait_condition(
                    lambda: bool(self._inbox), timeout=remaining, timeout_summary=window.label
                )
            except TimeoutError:
                break
        if status.stage == "watching":
            await self._activity(
                "close_clawback_window",
                CloseWindow(inp, window.window_ends_at, iso(workflow.now()), len(status.reports)),
                None,
                "the window passed cleanly",
            )
            self._set_stage("clean", f"window passed cleanly ({window.label} ended)")
        await self._ignore_inbox()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return status

    def _history_is_long(self, checked_here: int) -> bool:
        long = checked_here >= self._inp.reports_per_run
        # Histories recorded before this existed never reached here: the marker is new work only.
        return (long or workflow.info().is_continue_as_new_suggested()) and workflow.patched(
            CONTINUE_AS_NEW
        )

    async def _continue_as_new(self, window: WindowOpened) -> None:
        """Start afresh with the same window and the reports so far (signals queued meanwhile
        are carried too)."""
        assert self._status is not None
        await workflow.wait_condition(workflow.all_handlers_finished)
        carried = WatchCarry(
            window=window,
            reports=list(self._status.reports),
            inbox=[QueuedReport(at, report) for at, report in self._inbox],
        )
        workflow.continue_as_new(replace(self._inp, carried=carried))

    async def _check(self, arrived_at: str, report: KpiReportSignal, ends: datetime) -> None:
        late = datetime.fromisoformat(arrived_at) > ends
        reason = "it arrived after the clawback window ended" if late else None
        outcome = await self._record(report, reason)
        if outcome is not None and outcome.outcome == "breach":
            await self._claw_back(report, outcome.detail)

    async def _claw_back(self, report: KpiReportSignal, breach: str) -> None:
        status = self._status
        assert status is not None
        done: ClawedBack = await self._activity(
            "claw_back",
            ClawBack(watch=self._inp, report=report, breach=breach, at=iso(workflow.now())),
            ClawedBack,
            f"claw back {status.percent}% of the {self._inp.milestone_key} bonus",
        )
        if done.credit_note_id is not None:
            await record_document("credit_note", done.credit_note_id, "tollgate")
        status.clawback_minor = done.amount_minor
        status.invoice_id = done.invoice_id
        status.credit_note_id = done.credit_note_id
        status.invoice_line_id = done.invoice_line_id
        self._set_stage("clawed_back", done.detail)

    async def _ignore_inbox(self) -> None:
        """Reports the watch no longer acts on are still recorded, as ignored."""
        assert self._status is not None
        reason = {
            "clawed_back": "the bonus has already been clawed back",
            "clean": "the clawback window has closed",
        }[self._status.stage]
        while self._inbox:
            _, report = self._inbox.pop(0)
            await self._record(report, reason)

    async def _record(
        self, report: KpiReportSignal, ignore_reason: str | None
    ) -> ReportOutcome | None:
        """Check (or ignore) a report once; None for a report the API re-sent."""
        assert self._status is not None
        if any(r.report_id == report.report_id for r in self._status.reports):
            return None
        outcome: ReportOutcome = await self._activity(
            "check_kpi_report",
            CheckReport(self._inp, report, iso(workflow.now()), ignore_reason),
            ReportOutcome,
            f"check KPI report {report.report_id}",
        )
        self._status.reports.append(outcome)
        self._show()
        return outcome

    def _set_stage(self, stage: str, detail: str) -> None:
        assert self._status is not None
        self._status.stage, self._status.detail = stage, detail
        workflow.upsert_search_attributes([sa.STAGE.value_set(stage)])
        self._show()

    def _show(self) -> None:
        """What the watch waits for, in the Temporal UI's "Current Details" (not a command)."""
        status, inp = self._status, self._inp
        assert status is not None
        kpi = f"`{status.kpi['metric']} {status.kpi['op']} {status.kpi['threshold']}`"
        bonus = f"{format_minor(status.billed_minor, status.currency)} {status.currency}"
        if status.stage == "watching":
            lines = [
                f"**Watching** the `{inp.milestone_key}` bonus ({bonus}) until "
                f"{status.window_ends_at}: a KPI report breaking {kpi} claws back "
                f"{status.percent}%.",
            ]
        else:
            lines = [f"**Ended: {status.stage}** — {status.detail}"]
        lines.append(f"Reports checked: {len(status.reports)}.")
        workflow.set_current_details("\n\n".join(lines))
