"""SLA periods of a milestone: each period so far and how it was judged, and a judgement started."""

from pydantic import Field

from api.models.base import ApiModel, Page
from api.models.engagements import MILESTONE_ID
from api.models.invoices import INVOICE_ID
from api.models.runs import RUN_ID

JUDGE_ID = f"sla-period:{MILESTONE_ID}:2026-11"


class SlaPeriod(ApiModel):
    """One period of an SLA milestone, from its first (the one containing the milestone's
    creation) to the current one."""

    period: str = Field(
        description="The period's name: 2026-11 (month), 2026-W47 (ISO week) or 2026-Q4.",
        examples=["2026-11"],
    )
    starts_at: str = Field(
        description="Local midnight of its first day in the calendar's zone (ISO 8601, UTC).",
        examples=["2026-10-31T23:00:00.000000Z"],
    )
    ends_at: str = Field(
        description="Where the next period starts (ISO 8601, UTC); exclusive.",
        examples=["2026-11-30T23:00:00.000000Z"],
    )
    judged_from: str = Field(
        description="When it is judged: its end plus the milestone's report_grace_days "
        "(ISO 8601, UTC).",
        examples=["2026-12-03T23:00:00.000000Z"],
    )
    status: str = Field(
        description="met (a run billed it), not_met (judged without a passing report), open "
        "(not ended) or pending (ended, not yet judged: in its grace or a run is open).",
        examples=["not_met"],
    )
    run_id: str | None = Field(
        description="The run that billed a met period.", examples=[None, RUN_ID]
    )
    credit_minor: int = Field(
        description="The service credit a not_met period gave, in minor units (0: none).",
        examples=[25000],
    )
    invoice_id: str | None = Field(
        description="The invoice whose draft took the service credit line.",
        examples=[INVOICE_ID],
    )
    line_id: str | None = Field(
        description="The service_credit invoice line.", examples=["lin_01JC3QH8J9K0M1N2P3Q4R5S6"]
    )
    reason: str | None = Field(
        description="Why it was judged so.",
        examples=["no passing report before the period was judged"],
    )
    judged_at: str | None = Field(
        description="When it was judged (ISO 8601); null until then.",
        examples=["2026-12-04T00:00:02.412907Z"],
    )
    judged_by: str | None = Field(
        description="Who judged it: schedule, or the admin who asked.", examples=["schedule"]
    )


SlaPeriodPage = Page[SlaPeriod]


class SlaJudgementStarted(ApiModel):
    """A judgement started (or joined, when one of the period is already running)."""

    workflow_id: str = Field(
        description="The JudgeSlaPeriod workflow: sla-period:<milestone>:<period>.",
        examples=[JUDGE_ID],
    )
    milestone_id: str = Field(description="The SLA milestone.", examples=[MILESTONE_ID])
    period: str = Field(description="The period judged.", examples=["2026-11"])
    status: str = Field(description="Always judging.", examples=["judging"])
    status_url: str = Field(
        description="Where the milestone's periods are read.",
        examples=[f"https://billing.example.com/v1/milestones/{MILESTONE_ID}/sla-periods"],
    )
