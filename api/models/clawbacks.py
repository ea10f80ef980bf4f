"""KPI reports about a billed bonus and the state of its clawback watch."""

from pydantic import Field

from api.models.base import ApiModel, example_of
from api.models.engagements import ENGAGEMENT_ID, MILESTONE_ID
from api.models.invoices import INVOICE_ID
from api.models.runs import RUN_ID

WATCH_ID = f"clawback-{MILESTONE_ID}"
REPORT_ID = "kpr_01JC3QK0M1N2P3Q4R5S6T7U8V9"


class KpiReportAccepted(ApiModel):
    report_id: str = Field(description="The stored report.", examples=[REPORT_ID])
    milestone_id: str = Field(description="The milestone reported on.", examples=[MILESTONE_ID])
    watch_id: str = Field(description="The clawback watch that checks it.", examples=[WATCH_ID])
    status_url: str = Field(
        description="Where the watch's state is read.",
        examples=[f"https://billing.example.com/v1/milestones/{MILESTONE_ID}/clawback"],
    )


class ReportOutcome(ApiModel):
    report_id: str = Field(description="The report.", examples=[REPORT_ID])
    outcome: str = Field(description="ok, breach or ignored.", examples=["ok"])
    detail: str = Field(description="Why.", examples=["uptime 99.9 >= 99.5"])
    received_at: str = Field(
        description="When it arrived (ISO 8601).", examples=["2026-12-01T08:00:00Z"]
    )
    checked_at: str = Field(
        description="When the watch checked it (ISO 8601).", examples=["2026-12-01T08:00:01Z"]
    )


class ClawbackWatch(ApiModel):
    watch_id: str = Field(description="The watch's id.", examples=[WATCH_ID])
    engagement_id: str = Field(description="The engagement.", examples=[ENGAGEMENT_ID])
    milestone_id: str = Field(description="The bonus milestone watched.", examples=[MILESTONE_ID])
    bonus_run_id: str = Field(description="The run that billed the bonus.", examples=[RUN_ID])
    billed_minor: int = Field(description="The bonus billed, in minor units.", examples=[500000])
    currency: str = Field(description="ISO 4217 code of the amounts.", examples=["EUR"])
    percent: str = Field(
        description="Share clawed back on a breach, a decimal string.", examples=["100"]
    )
    kpi: dict[str, str] = Field(
        description="The KPI watched: metric, op and threshold.",
        examples=[{"metric": "uptime", "op": ">=", "threshold": "99.5"}],
    )
    stage: str = Field(description="watching, clawed_back or clean.", examples=["watching"])
    window_ends_at: str | None = Field(
        description="When the watch ends clean if no breach is reported (ISO 8601).",
        examples=["2027-02-01T00:00:00Z"],
    )
    reports: list[ReportOutcome] = Field(
        description="Reports checked so far.", examples=[[example_of(ReportOutcome)]]
    )
    clawback_minor: int | None = Field(
        description="Amount clawed back, in minor units, after a breach.", examples=[None]
    )
    invoice_id: str | None = Field(description="The invoice credited.", examples=[INVOICE_ID])
    credit_note_id: str | None = Field(description="The credit note issued.", examples=[None])
    invoice_line_id: str | None = Field(description="The invoice line credited.", examples=[None])
    detail: str | None = Field(description="How the watch ended.", examples=[None])
