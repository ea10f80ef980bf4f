"""What a clawback watch (a billed bonus under clawback, watched for its window), its activities
and the API pass each other."""

from dataclasses import dataclass, field
from typing import Any


@dataclass
class WatchInput:
    """Frozen from the bonus's run when it is billed; ``clawback`` is the milestone's terms
    ({"window": span, "kpi": {metric, op, threshold}, "percent": "100"})."""

    watch_id: str
    engagement_id: str
    customer_id: str
    milestone_id: str
    milestone_key: str
    milestone_name: str
    bonus_run_id: str
    billed_minor: int
    currency: str
    clawback: dict[str, Any]
    calendar: dict[str, Any]
    billed_at: str
    # A watch continues as new after this many reports, so its history stays small.
    reports_per_run: int = 200
    # What a watch that continued as new carries over (None for the first run).
    carried: "WatchCarry | None" = None

    @property
    def run_id(self) -> str:
        """The watch's audit events carry its id where a run's carry the run's."""
        return self.watch_id


@dataclass
class KpiReportSignal:
    report_id: str
    kpis: dict[str, str]
    received_at: str  # when the API accepted it
    evidence_ids: list[str] = field(default_factory=list)


@dataclass
class OpenWindow:
    watch: WatchInput
    at: str


@dataclass
class WindowOpened:
    window_ends_at: str
    label: str  # "clawback window (90 days)"


@dataclass
class ReportOutcome:
    report_id: str
    outcome: str  # ok | breach | ignored
    detail: str
    received_at: str
    checked_at: str


@dataclass
class QueuedReport:
    arrived_at: str
    report: "KpiReportSignal"


@dataclass
class WatchCarry:
    """A watch's state across continue-as-new: its window, the reports checked so far, and the
    reports that arrived but were not checked yet."""

    window: WindowOpened
    reports: list[ReportOutcome]
    inbox: list[QueuedReport]


@dataclass
class CheckReport:
    watch: WatchInput
    report: KpiReportSignal
    at: str
    ignore_reason: str | None = None  # set once the watch no longer acts on reports


@dataclass
class ClawBack:
    watch: WatchInput
    report: KpiReportSignal
    breach: str  # what the report broke, for the credit's description and the audit
    at: str


@dataclass
class ClawedBack:
    amount_minor: int
    invoice_id: str
    credit_note_id: str | None = None  # when the bonus's invoice was finalized
    invoice_line_id: str | None = None  # a credit line, when it was still a draft
    detail: str = ""


@dataclass
class CloseWindow:
    watch: WatchInput
    window_ends_at: str
    at: str
    reports: int


@dataclass
class WatchStatus:
    """The ``status`` query of a clawback watch (and its result)."""

    watch_id: str
    engagement_id: str
    milestone_id: str
    bonus_run_id: str
    billed_minor: int
    currency: str
    percent: str
    kpi: dict[str, str]
    stage: str = "watching"  # watching | clawed_back | clean
    window_ends_at: str | None = None
    reports: list[ReportOutcome] = field(default_factory=list)
    clawback_minor: int | None = None
    invoice_id: str | None = None
    credit_note_id: str | None = None
    invoice_line_id: str | None = None
    detail: str | None = None
