"""Typed contracts between the API, a milestone run and its activities, and what every run
shares (approval policy, subject, cancel, end). Close-outs, change orders and clawback watches
keep theirs beside this one (``closeout_contracts``, ``change_order_contracts``,
``watch_contracts``).

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
