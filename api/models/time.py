"""Time and materials: entries as posted, batch answers, and a month's billing period.
Hours are decimal strings; money is in minor units of the engagement's currency."""

from typing import Any

from pydantic import Field, RootModel

from api.models.base import ApiModel, example_of
from api.models.customers import CREATED_AT
from api.models.engagements import ENGAGEMENT_ID
from api.models.invoices import INVOICE_ID, LINE_ID

PERIOD = "2026-11"
WORKFLOW_ID = f"time-period-{ENGAGEMENT_ID}-{PERIOD}"


class TimeEntry(ApiModel):
    id: str = Field(description="The entry's id.", examples=["tme_01JC3QS6T7U8V9W0X1Y2Z3A4B5"])
    external_id: str | None = Field(
        description="Your id for it (null on reversal rows).", examples=["tt-4411"]
    )
    kind: str = Field(description="entry or reversal.", examples=["entry"])
    reverses: str | None = Field(
        description="On a reversal: the `external_id` of the entry reversed.", examples=[None]
    )
    correction_of: str | None = Field(
        description="The `external_id` this entry corrects, if it is a correction.",
        examples=[None],
    )
    person: str = Field(description="Who worked.", examples=["dana@consultancy.example"])
    role: str = Field(description="The rate card's role.", examples=["senior"])
    date: str = Field(description="The day worked (ISO 8601 date).", examples=["2026-11-03"])
    hours: str = Field(
        description="Hours, a decimal string (negative on reversals).", examples=["7.5"]
    )
    rate_minor: int = Field(
        description="The hourly rate applied, in minor units.", examples=[15000]
    )
    amount_minor: int = Field(description="hours x rate, in minor units.", examples=[112500])
    period: str = Field(description="The billing month it is booked into.", examples=[PERIOD])
    adjustment: bool = Field(
        description="Whether it is booked into a later period than its date's.", examples=[False]
    )
    description: str = Field(description="What was done.", examples=["Cutover rehearsal"])
    milestone: str | None = Field(
        description="The milestone key it was worked towards (a delay: the one it delayed).",
        examples=[None],
    )
    entry_kind: str = Field(
        description="work, or dependency_delay (client-caused delay at the advisory rate; its "
        "person is who caused it, its role dependency_delay, its hours 0).",
        examples=["work"],
    )
    caused_by: str | None = Field(description="A delay's: who caused it.", examples=[None])
    business_days: int | None = Field(
        description="A delay's business days (negative on its reversal).", examples=[None]
    )
    created_at: str = Field(description="When it was posted (ISO 8601).", examples=[CREATED_AT])


class PostedEntry(TimeEntry):
    """An entry as posting answered it; a correction carries the reversal it made."""

    reversal: TimeEntry | None = Field(
        default=None,
        description="Corrections only: the reversal of the corrected entry.",
        examples=[None],
    )


class BatchRow(ApiModel):
    external_id: str | None = Field(description="The row's `external_id`.", examples=["tt-4411"])
    status: str = Field(description="created, replayed or refused.", examples=["created"])
    entry: PostedEntry | None = Field(
        default=None,
        description="The entry (created or replayed rows).",
        examples=[example_of(TimeEntry)],
    )
    error: dict[str, Any] | None = Field(
        default=None,
        description="The row's problem (refused rows): status, type, title, detail, errors.",
        examples=[None],
    )


class TimeEntryBatch(ApiModel):
    results: list[BatchRow] = Field(
        description="One result per row, in order.", examples=[[example_of(BatchRow)]]
    )


class PeriodClosing(ApiModel):
    workflow_id: str = Field(description="The close's workflow.", examples=[WORKFLOW_ID])
    engagement_id: str = Field(description="The engagement.", examples=[ENGAGEMENT_ID])
    period: str = Field(description="The month closing.", examples=[PERIOD])
    status: str = Field(description="Always `closing`.", examples=["closing"])
    status_url: str = Field(
        description="Where the period is read.",
        examples=[
            f"https://billing.example.com/v1/engagements/{ENGAGEMENT_ID}/time-periods/{PERIOD}"
        ],
    )


class RateHours(ApiModel):
    rate_minor: int = Field(description="An hourly rate, in minor units.", examples=[15000])
    hours: str = Field(description="Hours at that rate, a decimal string.", examples=["7.5"])


class RoleTotal(ApiModel):
    role: str = Field(description="The role.", examples=["senior"])
    hours: str = Field(description="Its hours, a decimal string.", examples=["7.5"])
    entry_count: int = Field(description="Its entries.", examples=[1])
    amount_minor: int = Field(
        description="Its amount before caps, in minor units.", examples=[112500]
    )
    billed_minor: int = Field(description="Its amount billed, in minor units.", examples=[112500])
    capped_minor: int = Field(description="Its amount cut by caps, in minor units.", examples=[0])
    rates: list[RateHours] = Field(
        description="Its hours by rate.", examples=[[example_of(RateHours)]]
    )


class PeriodEntry(TimeEntry):
    billed_minor: int | None = Field(
        description="What the entry bills (after caps), in minor units.", examples=[112500]
    )
    capped_minor: int | None = Field(
        description="What caps cut from it, in minor units.", examples=[0]
    )


class PeriodLine(ApiModel):
    id: str = Field(description="The invoice line's id.", examples=[LINE_ID])
    invoice_id: str = Field(description="Its invoice.", examples=[INVOICE_ID])
    kind: str = Field(description="time, true_up, retention …", examples=["time"])
    description: str = Field(description="The line's text.", examples=["Time 2026-11: senior"])
    amount_minor: int = Field(description="The line's amount, in minor units.", examples=[112500])
    details: dict[str, Any] | None = Field(description="How it was computed.", examples=[None])


class TimePeriod(ApiModel):
    engagement_id: str = Field(description="The engagement.", examples=[ENGAGEMENT_ID])
    period: str = Field(description="The month (YYYY-MM).", examples=[PERIOD])
    status: str = Field(
        description="open, awaiting_approval (its timesheet's sign-off is open) or closed.",
        examples=["open"],
    )
    sign_off_run_id: str | None = Field(
        description="With approval: true, its latest timesheet sign-off run (GET /v1/runs/{id}).",
        examples=[None],
    )
    preview: bool = Field(
        description="True while open: the figures are what closing now would bill.",
        examples=[True],
    )
    workflow_id: str = Field(description="The close's workflow id.", examples=[WORKFLOW_ID])
    closed_at: str | None = Field(description="When it was closed (ISO 8601).", examples=[None])
    closed_by: str | None = Field(description="Who closed it.", examples=[None])
    invoice_id: str | None = Field(description="The invoice its lines are on.", examples=[None])
    entry_count: int = Field(description="Entries in the period.", examples=[1])
    entries_sha256: str = Field(
        description="sha256 over the period's entries (what the close billed).",
        examples=["e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
    )
    hours: str = Field(description="Total hours, a decimal string.", examples=["7.5"])
    amount_minor: int = Field(description="Total before caps, in minor units.", examples=[112500])
    capped_minor: int = Field(description="Cut by caps, in minor units.", examples=[0])
    true_up_minor: int = Field(
        description="Added to reach the period minimum, in minor units.", examples=[0]
    )
    gross_minor: int = Field(
        description="Billed before retention, in minor units.", examples=[112500]
    )
    retention_minor: int = Field(description="Retention held, in minor units.", examples=[5625])
    delay_minor: int = Field(
        description="Client-caused delay at the advisory rate (outside caps, floor and "
        "retention), in minor units.",
        examples=[0],
    )
    delay_business_days: int = Field(
        description="Business days of client-caused delay billed.", examples=[0]
    )
    net_minor: int = Field(
        description="Gross less retention plus delay, in minor units.", examples=[106875]
    )
    billed_before_minor: int = Field(
        description="Billed in earlier periods (towards the not-to-exceed cap), in minor units.",
        examples=[0],
    )
    roles: list[RoleTotal] = Field(
        description="Totals by role.", examples=[[example_of(RoleTotal)]]
    )
    entries: list[PeriodEntry] = Field(
        description="The period's entries.", examples=[[example_of(PeriodEntry)]]
    )
    lines: list[PeriodLine] = Field(description="Its invoice lines, once closed.", examples=[[]])


class TimeEntriesPosted(RootModel[PostedEntry | TimeEntryBatch]):  # type: ignore[valid-type]
    """One entry posted (the entry), or a batch (a result per row)."""
