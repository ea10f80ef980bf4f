"""Typed contracts between the API, the workflows and their activities.

Times cross the Temporal boundary as RFC 3339 strings; money as int minor units; percents as
decimal strings. Everything a run needs is snapshotted into ``RunInput`` when it starts, so later
edits to the engagement never change a run in flight.
"""

from dataclasses import dataclass, field
from typing import Any

from domain.lifecycle import TERMINAL_STAGES as TERMINAL_STAGES

# Deadline kind → its field in the run's status.
DEADLINE_FIELDS = {
    "reminder": "reminder_at",
    "escalation": "escalate_at",
    "deemed_warning": "deemed_warning_at",
    "deemed_acceptance": "deemed_acceptance_at",
    "expiry": "expire_at",
}


@dataclass
class ApprovalPolicy:
    roles: dict[str, list[str]]
    escalation: dict[str, list[str]] = field(default_factory=dict)
    client_roles: list[str] = field(default_factory=list)
    reminder_after: dict[str, Any] | None = None
    escalate_after: dict[str, Any] | None = None
    deemed_acceptance_after: dict[str, Any] | None = None
    expire_after: dict[str, Any] | None = None
    calendar: dict[str, Any] = field(default_factory=dict)
    # How long before deemed acceptance the client roles are warned (None: never). Added
    # later; the default keeps older histories decodable.
    deemed_warning_before: dict[str, Any] | None = None


@dataclass
class Subject:
    """What a sign-off is about: a milestone run, an engagement's close-out or a change order.

    The approval activities need only this, so every kind of sign-off shares them.
    """

    run_id: str
    engagement_id: str
    milestone_id: str | None
    title: str
    policy: ApprovalPolicy


@dataclass
class DependencySpec:
    milestone_id: str
    milestone_key: str
    kpi: dict[str, str] | None = None


@dataclass
class RunInput:
    run_id: str
    engagement_id: str
    customer_id: str
    milestone_id: str
    milestone_key: str
    milestone_name: str
    trigger_id: str
    trigger_mode: str
    completion_percent: str
    kpis: dict[str, str]
    evidence_ids: list[str]
    fee_minor: int
    currency: str
    retention_percent: str
    criteria: list[dict[str, Any]]
    depends_on: list[DependencySpec]
    policy: ApprovalPolicy
    # Added with commercial terms; defaults keep older histories replayable.
    kind: str = "standard"  # standard | bonus | success_fee
    deadline: str | None = None  # a trigger received after it cannot qualify
    clawback: dict[str, Any] | None = None
    success_fee: dict[str, Any] | None = None
    # Added with regulatory confirmations (activities read them; the workflow does not).
    confirmation_id: str | None = None
    repeatable: bool = False  # one filing of a per-filing milestone: no claim on the milestone
    period: str | None = None  # the SLA period (``2026-11``) the run bills; activities read it

    @property
    def subject(self) -> "Subject":
        return Subject(
            run_id=self.run_id,
            engagement_id=self.engagement_id,
            milestone_id=self.milestone_id,
            title=self.milestone_name,
            policy=self.policy,
        )


@dataclass
class CriterionOutcome:
    id: str
    passed: bool | None
    detail: str


@dataclass
class Deadline:
    kind: str  # reminder | escalation | deemed_warning | deemed_acceptance | expiry
    at: str
    label: str


@dataclass
class Amounts:
    gross_minor: int
    retention_minor: int
    net_minor: int


@dataclass
class RunOpened:
    criteria: list[CriterionOutcome]
    deadlines: list[Deadline]
    amounts: Amounts


@dataclass
class OpenRun:
    run: RunInput
    opened_at: str
    # The run enters ``awaiting_approval`` in the same transaction that opens it (runs that
    # began before this existed enter it with a ``set_stage`` of its own).
    enters_approval: bool = False


@dataclass
class DecisionSignal:
    role: str
    principal_id: str
    decision: str  # approve | reject
    comment: str = ""
    evidence_ids: list[str] = field(default_factory=list)


@dataclass
class DecisionView:
    role: str
    principal_id: str | None
    decision: str
    via: str  # approver | escalation | deemed | automatic
    comment: str
    at: str
    evidence_ids: list[str] = field(default_factory=list)


@dataclass
class RecordDecision:
    subject: Subject
    decision: DecisionView


@dataclass
class RecordIgnoredDecision:
    subject: Subject
    signal: DecisionSignal
    reason: str
    at: str
    sequence: int


@dataclass
class Notify:
    subject: Subject
    kind: str  # reminder | escalation
    roles: list[str]
    at: str


@dataclass
class PlanDeadlines:
    policy: ApprovalPolicy
    start: str


@dataclass
class SetStage:
    run: RunInput
    stage: str
    at: str
    outcome: str | None = None
    detail: str | None = None


@dataclass
class DependencyCheck:
    state: str  # satisfied | waiting | impossible
    waiting_on: list[str]
    details: list[str]


@dataclass
class CheckDependencies:
    run: RunInput
    at: str


@dataclass
class BillingResult:
    invoice_id: str
    amounts: Amounts
    dependant_run_ids: list[str]


@dataclass
class PostBilling:
    run: RunInput
    at: str
    # The run enters ``billing`` in the same transaction that posts its lines (runs that began
    # before this existed enter it with a ``set_stage`` of its own first).
    enters_billing: bool = False
    # The final approval, recorded (and committed) by the same activity just before the lines,
    # so a run without dependencies goes from its last sign-off to billed in one activity.
    decision: DecisionView | None = None


@dataclass
class RunStatus:
    """The ``status`` query of every sign-off workflow (milestone run, close-out, change order)."""

    run_id: str
    milestone_id: str | None
    stage: str
    pending_roles: list[str] = field(default_factory=list)
    escalated_roles: list[str] = field(default_factory=list)
    decisions: list[DecisionView] = field(default_factory=list)
    deadlines: dict[str, str | None] = field(
        default_factory=lambda: dict.fromkeys(DEADLINE_FIELDS.values())
    )
    criteria: list[CriterionOutcome] = field(default_factory=list)
    waiting_on: list[str] = field(default_factory=list)
    amounts: Amounts | None = None
    invoice_id: str | None = None
    outcome: str | None = None
    outcome_detail: str | None = None
    kind: str = "milestone"  # milestone | closeout | change_order
    engagement_id: str | None = None
    # Kind-specific facts (close-out: retention balance and release; change order: its id).
    details: dict[str, Any] = field(default_factory=dict)


# ---- engagement close-out --------------------------------------------------------------------


@dataclass
class Waiver:
    """An unaccepted milestone the admin waived at close-out, with the reason."""

    milestone_id: str
    milestone_key: str
    reason: str


@dataclass
class CloseoutInput:
    """Everything a close-out needs, frozen when it is requested (also the runs row's snapshot)."""

    run_id: str
    engagement_id: str
    customer_id: str
    engagement_name: str
    currency: str
    policy: ApprovalPolicy
    waivers: list[Waiver] = field(default_factory=list)
    # A span ({"duration": "P180D"} or {"business_days": N}): the warranty before release.
    release_delay: dict[str, Any] | None = None
    note: str | None = None
    requested_by: str = "admin"

    @property
    def milestone_id(self) -> str | None:
        return None  # a close-out is about the whole engagement

    @property
    def subject(self) -> Subject:
        return Subject(
            run_id=self.run_id,
            engagement_id=self.engagement_id,
            milestone_id=None,
            title=f"Close-out of {self.engagement_name}",
            policy=self.policy,
        )


@dataclass
class CloseoutStep:
    """A close-out activity's argument: the close-out, when, and for stage changes the stage."""

    closeout: CloseoutInput
    at: str
    stage: str | None = None
    outcome: str | None = None
    detail: str | None = None


@dataclass
class RetentionReleased:
    released_minor: int
    invoice_id: str | None


# ---- change orders ----------------------------------------------------------------------------


@dataclass
class ChangeOrderInput:
    """A proposed change order, frozen when proposed (also its runs row's snapshot)."""

    run_id: str
    change_order_id: str
    engagement_id: str
    customer_id: str
    reason: str
    # The change set as stored on the change order: {"update": [...], "add": [...], "remove": [...]}
    changes: dict[str, Any]
    base_version: int
    policy: ApprovalPolicy

    @property
    def milestone_id(self) -> str | None:
        return None  # a change order is about the engagement's terms

    @property
    def subject(self) -> Subject:
        headline = (self.reason.strip().splitlines() or [""])[0][:120]
        return Subject(
            run_id=self.run_id,
            engagement_id=self.engagement_id,
            milestone_id=None,
            title=f"Change order {self.change_order_id}: {headline}",
            policy=self.policy,
        )


@dataclass
class ChangeOrderStep:
    """A change-order activity's argument: the order, when, and the stage or sign-off verdict."""

    change_order: ChangeOrderInput
    at: str
    stage: str | None = None
    outcome: str | None = None  # approved | rejected | expired
    detail: str = ""


@dataclass
class ChangeOrderResult:
    status: str  # applied | conflicted | rejected | expired
    version: int | None = None
    detail: str | None = None


# ---- clawback watch: a billed bonus under clawback, watched for its window ----------------


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


@dataclass
class CancelRequest:
    """An admin's request to cancel a run, with the reason the audit trail keeps."""

    reason: str
    by: str


@dataclass
class EndRun:
    """A run that ends off its own path: ``cancelled`` or ``failed``, with the reason."""

    run_id: str
    stage: str
    detail: str
    at: str
    actor: str = "tollgate"
