"""Per-encounter billing: payers, their fee schedules, uploads and batches, and encounters."""

from typing import Any

from pydantic import Field

from api.models.base import ApiModel, example_of
from api.models.customers import CREATED_AT
from api.models.engagements import ENGAGEMENT_ID, SPAN
from api.models.invoices import INVOICE_ID, LINE_ID

PAYER_ID = "payer-aok"
SCHEDULE_ID = "fsv_01JC3QT7U8V9W0X1Y2Z3A4B5C6"
BATCH_ID = "ecb_01JC3QU8V9W0X1Y2Z3A4B5C6D7"
BATCH_WORKFLOW = f"encounters-{BATCH_ID}"
BATCH_URL = (
    f"https://billing.example.com/v1/engagements/{ENGAGEMENT_ID}/encounter-batches/{BATCH_ID}"
)


class ScheduleSummary(ApiModel):
    id: str = Field(description="The schedule version's id.", examples=[SCHEDULE_ID])
    effective_from: str = Field(
        description="The day it takes effect (ISO 8601 date); it holds until a later version.",
        examples=["2026-01-01"],
    )
    procedure_codes: int = Field(description="How many procedure codes it prices.", examples=[120])


class Payer(ApiModel):
    id: str = Field(description="The payer's id (chosen when created).", examples=[PAYER_ID])
    name: str = Field(description="The payer's name.", examples=["AOK Nordost"])
    currency: str = Field(description="ISO 4217 code of its fees.", examples=["EUR"])
    payment_terms: dict[str, Any] = Field(
        description="How long after issue its invoices are due (a span).", examples=[SPAN]
    )
    fee_schedules: list[ScheduleSummary] = Field(
        description="Its schedule versions, oldest first.",
        examples=[[example_of(ScheduleSummary)]],
    )


class FeeEntry(ApiModel):
    procedure_code: str = Field(description="The procedure code priced.", examples=["99213"])
    amount_minor: int = Field(
        description="The fee per unit, in minor units of the payer's currency.", examples=[9200]
    )
    units: bool | int = Field(
        description="false: one fee per encounter; true: per unit; N: per unit, at most N.",
        examples=[False],
    )
    modifiers: dict[str, str] = Field(
        description="Modifier codes and the percent of the fee each pays (decimal strings).",
        examples=[{"52": "50"}],
    )


class FeeSchedule(ScheduleSummary):
    payer_id: str = Field(description="The payer.", examples=[PAYER_ID])
    entries: list[FeeEntry] = Field(
        description="Its fees, by procedure code.", examples=[[example_of(FeeEntry)]]
    )


class RowAnswer(ApiModel):
    row: int = Field(
        description="The record's position in the upload, from 1 (CSV: after the header).",
        examples=[1],
    )
    encounter_id: str | None = Field(description="The row's `encounter_id`.", examples=["enc-0001"])
    status: int = Field(description="201 accepted, 409 a duplicate, 422 refused.", examples=[201])
    amount_minor: int | None = Field(
        default=None, description="Accepted rows: the price, in minor units.", examples=[9200]
    )
    error: dict[str, Any] | None = Field(
        default=None,
        description="Refused rows: the problem (type, detail, errors).",
        examples=[None],
    )


class BatchLinks(ApiModel):
    batch_id: str | None = Field(
        description="The batch the accepted encounters were recorded in (null: none accepted).",
        examples=[BATCH_ID],
    )
    workflow_id: str | None = Field(
        default=None, description="The batch's billing workflow.", examples=[BATCH_WORKFLOW]
    )
    billing: str | None = Field(
        description="started; awaiting_sign_off when the engagement's approval says "
        '`"encounters": "sign_off"` (it bills once approved); or pending when Temporal could '
        "not be reached (then `POST …/encounter-batches/{id}/bill`).",
        examples=["started"],
    )
    sign_off_run_id: str | None = Field(
        default=None,
        description="With sign-off: the batch's run (GET /v1/runs/{id}, decisions there).",
        examples=[f"encounters:{ENGAGEMENT_ID}:{BATCH_ID}:sign-off"],
    )
    batch_url: str | None = Field(
        default=None, description="Where the batch is read.", examples=[BATCH_URL]
    )


class EncounterAccepted(RowAnswer, BatchLinks):
    """One encounter (a JSON body), accepted and priced."""


class EncounterUpload(BatchLinks):
    """A batch (NDJSON or CSV): an answer per row."""

    accepted: int = Field(description="Rows accepted.", examples=[9998])
    refused: int = Field(description="Rows refused (they changed nothing).", examples=[2])
    results: list[RowAnswer] = Field(
        description="One answer per row, in order.", examples=[[example_of(RowAnswer)]]
    )


class EncounterBatch(ApiModel):
    batch_id: str = Field(description="The batch's id.", examples=[BATCH_ID])
    engagement_id: str = Field(description="The engagement.", examples=[ENGAGEMENT_ID])
    payer_id: str = Field(description="The payer billed.", examples=[PAYER_ID])
    workflow_id: str = Field(description="Its billing workflow.", examples=[BATCH_WORKFLOW])
    accepted: int = Field(description="Encounters accepted.", examples=[9998])
    refused: int = Field(description="Rows refused.", examples=[2])
    total_minor: int = Field(
        description="Sum of the accepted prices, in minor units.", examples=[91981600]
    )
    billed: int = Field(description="Encounters billed so far.", examples=[9998])
    billed_minor: int = Field(
        description="Amount billed so far, in minor units.", examples=[91981600]
    )
    invoice_ids: list[str] = Field(description="Invoices billed on.", examples=[[INVOICE_ID]])
    status: str = Field(
        description="awaiting_sign_off, billing, billed, or how its sign-off ended without "
        "approval (rejected, expired, cancelled, failed: nothing billed).",
        examples=["billed"],
    )
    sign_off_run_id: str | None = Field(
        description="Its sign-off run, when the engagement signs encounters off.",
        examples=[None],
    )
    created_at: str = Field(description="When it was uploaded (ISO 8601).", examples=[CREATED_AT])


class Encounter(ApiModel):
    encounter_id: str = Field(description="Your id for the encounter.", examples=["enc-0001"])
    batch_id: str = Field(description="The batch it came in.", examples=[BATCH_ID])
    procedure_code: str = Field(description="The procedure code.", examples=["99213"])
    modifiers: list[Any] = Field(description="Modifier codes.", examples=[["52"]])
    units: int = Field(description="Units performed.", examples=[1])
    service_date: str = Field(
        description="The day of service (ISO 8601 date).", examples=["2026-11-03"]
    )
    payer_id: str = Field(description="The payer.", examples=[PAYER_ID])
    fee_schedule_id: str = Field(
        description="The schedule version that priced it.", examples=[SCHEDULE_ID]
    )
    unit_amount_minor: int = Field(description="The fee per unit, in minor units.", examples=[9200])
    amount_minor: int = Field(description="Its price, in minor units.", examples=[4600])
    status: str = Field(
        description="priced (awaiting billing), billed, pending_sign_off (its batch awaits "
        "sign-off), or rejected, expired, cancelled, failed (its batch's sign-off ended without "
        "approval: never billed).",
        examples=["billed"],
    )
    invoice_id: str | None = Field(
        description="The invoice it is billed on.", examples=[INVOICE_ID]
    )
    line_id: str | None = Field(description="The invoice line it is in.", examples=[LINE_ID])
    created_at: str = Field(description="When it was accepted (ISO 8601).", examples=[CREATED_AT])
    billed_at: str | None = Field(description="When it was billed (ISO 8601).", examples=[None])
    patient_ref: str | None = Field(
        default=None, description="Admin only: the patient reference.", examples=["pt-77812"]
    )
