"""Runs: a trigger's sign-off (and a close-out's or change order's), as accepted and as they go."""

from typing import Any

from pydantic import Field

from api.models.base import ApiModel, example_of
from api.models.customers import CREATED_AT
from api.models.engagements import ENGAGEMENT_ID, MILESTONE_ID

RUN_ID = "run_01JC3QD4E5F6G7H8J9K0M1N2P3"
STATUS_URL = f"https://billing.example.com/v1/runs/{RUN_ID}"
PRINCIPAL_ID = "prn_01JC3Q8A0B1C2D3E4F5G6H7J8K"


class RunAccepted(ApiModel):
    """A trigger accepted: its run is started (or was, for a replayed key)."""

    run_id: str = Field(description="The run the trigger started.", examples=[RUN_ID])
    milestone_id: str = Field(description="The milestone triggered.", examples=[MILESTONE_ID])
    stage: str = Field(
        description="The run's stage when this answer was written.", examples=["received"]
    )
    status_url: str = Field(description="Where the run's status is read.", examples=[STATUS_URL])


class Decision(ApiModel):
    role: str = Field(description="The role decided for.", examples=["client_pm"])
    principal_id: str | None = Field(
        description="Who decided (null for deemed or automatic decisions).",
        examples=[PRINCIPAL_ID],
    )
    decision: str = Field(description="approve or reject.", examples=["approve"])
    via: str = Field(
        description="approver, escalation, deemed or automatic.", examples=["approver"]
    )
    comment: str = Field(
        description="The decider's comment (may be empty).", examples=["Looks good"]
    )
    at: str = Field(
        description="When it was decided (ISO 8601).", examples=["2026-11-04T10:00:00Z"]
    )
    evidence_ids: list[str] = Field(
        description="Evidence the decider cited.", examples=[["evd_01JC3QE5F6G7H8J9K0M1N2P3Q4"]]
    )


class Criterion(ApiModel):
    id: str = Field(description="The acceptance criterion's id.", examples=["uptime"])
    passed: bool | None = Field(
        description="Whether the trigger met it (null: a person judges it).", examples=[True]
    )
    detail: str = Field(description="Why it passed or failed.", examples=["uptime 99.9 >= 99.5"])


class Amounts(ApiModel):
    gross_minor: int = Field(
        description="Amount billed before retention, in minor units.", examples=[1200000]
    )
    retention_minor: int = Field(
        description="Retention held back, in minor units.", examples=[60000]
    )
    net_minor: int = Field(description="Gross less retention, in minor units.", examples=[1140000])


class RunStatus(ApiModel):
    """A run's status: from its workflow while it answers, else from the books."""

    run_id: str = Field(description="The run's id.", examples=[RUN_ID])
    milestone_id: str | None = Field(
        description="The milestone (null for close-outs and change orders).",
        examples=[MILESTONE_ID],
    )
    stage: str = Field(
        description="received, awaiting_approval, billing, billed, rejected, expired, "
        "cancelled, failed …",
        examples=["awaiting_approval"],
    )
    pending_roles: list[str] = Field(
        description="Roles whose decision is awaited.", examples=[["client_pm"]]
    )
    escalated_roles: list[str] = Field(
        description="Pending roles escalated to their contacts.", examples=[[]]
    )
    decisions: list[Decision] = Field(
        description="Decisions so far, in order.", examples=[[example_of(Decision)]]
    )
    deadlines: dict[str, str | None] = Field(
        description="The sign-off's deadlines (ISO 8601): reminder_at, escalate_at, "
        "deemed_warning_at, deemed_acceptance_at, expire_at.",
        examples=[{"reminder_at": "2026-11-05T09:00:00Z", "expire_at": None}],
    )
    criteria: list[Criterion] = Field(
        description="Acceptance criteria and how the trigger met them.",
        examples=[[example_of(Criterion)]],
    )
    waiting_on: list[str] = Field(
        description="Milestones this run waits for (its dependencies).", examples=[[]]
    )
    amounts: Amounts | None = Field(
        description="What the run bills, once priced.", examples=[example_of(Amounts)]
    )
    invoice_id: str | None = Field(
        description="The invoice the run's line is on, once billed.", examples=[None]
    )
    outcome: str | None = Field(description="How the run ended, once it has.", examples=[None])
    outcome_detail: str | None = Field(description="Why it ended so.", examples=[None])
    kind: str = Field(
        description="milestone, closeout, change_order, timesheet or encounters.",
        examples=["milestone"],
    )
    engagement_id: str | None = Field(description="The engagement.", examples=[ENGAGEMENT_ID])
    details: dict[str, Any] = Field(
        description="Kind-specific facts (close-out: retention released; change order: its id, "
        "status and version; encounters: the batch's id, count, total_minor and "
        "encounter_ids_sha256, once billed its invoice_ids).",
        examples=[{}],
    )
    confirmation_id: str | None = Field(
        default=None,
        description="Milestone runs only: the regulator's confirmation id the trigger carried.",
        examples=[None],
    )
    period: str | None = Field(
        default=None,
        description="Milestone runs only: the SLA period billed (`2026-11`, `2026-W47`, …).",
        examples=[None],
    )


class RunItem(ApiModel):
    """A run in the admin's list, from the books."""

    run_id: str = Field(description="The run's id.", examples=[RUN_ID])
    kind: str = Field(
        description="milestone, closeout, change_order, timesheet or encounters.",
        examples=["milestone"],
    )
    engagement_id: str = Field(description="The engagement.", examples=[ENGAGEMENT_ID])
    milestone_id: str | None = Field(description="The milestone, if any.", examples=[MILESTONE_ID])
    stage: str = Field(description="The run's recorded stage.", examples=["billed"])
    outcome: str | None = Field(description="How it ended, once it has.", examples=["billed"])
    outcome_detail: str | None = Field(description="Why it ended so.", examples=[None])
    amounts: Amounts | None = Field(
        description="What it billed, once priced.", examples=[example_of(Amounts)]
    )
    invoice_id: str | None = Field(
        description="The invoice its line is on.", examples=["inv_01JC3QF6G7H8J9K0M1N2P3Q4R5"]
    )
    created_at: str = Field(description="When it was started (ISO 8601).", examples=[CREATED_AT])
    closed_at: str | None = Field(
        description="When it ended (ISO 8601).", examples=["2026-11-04T10:00:02Z"]
    )
    status_url: str = Field(description="Where its live status is read.", examples=[STATUS_URL])


class CloseoutAccepted(ApiModel):
    run_id: str = Field(description="The close-out's run.", examples=[f"closeout-{ENGAGEMENT_ID}"])
    engagement_id: str = Field(description="The engagement closing.", examples=[ENGAGEMENT_ID])
    stage: str = Field(description="Always `received`.", examples=["received"])
    status_url: str = Field(description="Where its status is read.", examples=[STATUS_URL])


class Approval(ApiModel):
    """A sign-off awaiting the caller, with a signed link to decide it in a browser."""

    run_id: str = Field(description="The run awaiting the decision.", examples=[RUN_ID])
    kind: str = Field(
        description="milestone, closeout, change_order, timesheet or encounters.",
        examples=["milestone"],
    )
    engagement_id: str = Field(description="The engagement.", examples=[ENGAGEMENT_ID])
    milestone_id: str | None = Field(description="The milestone, if any.", examples=[MILESTONE_ID])
    title: str = Field(
        description="What is to be signed off, in words.", examples=["EHR migration: Go-live"]
    )
    role: str = Field(description="The role the caller decides for.", examples=["client_pm"])
    as_: str = Field(
        alias="as",
        description="approver (holds the role) or escalation (a contact of an escalated role).",
        examples=["approver"],
    )
    deadlines: dict[str, str | None] = Field(
        description="The run's deadlines (ISO 8601).", examples=[{"expire_at": None}]
    )
    link: str = Field(
        description="Signed link to the approval page; valid until `link_expires_at`.",
        examples=["https://billing.example.com/approve/eyJydW4iOiJydW5fMDEifQ.sig"],
    )
    link_expires_at: str = Field(
        description="When the link stops working (ISO 8601).", examples=["2026-12-03T09:15:00Z"]
    )
    status_url: str = Field(description="Where the run's status is read.", examples=[STATUS_URL])
