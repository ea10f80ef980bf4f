"""Request bodies. Unknown fields are refused; money is a strict non-negative int; percents are
decimal strings; each rule is checked by the domain function that owns it. Every amount, text,
list and KPI payload is bounded (``domain.bounds``), so nothing accepted can fail later.

The bodies a service takes (engagements, change orders, close-outs) live in ``services.inputs`` and
``services.change_inputs`` and are re-exported here, so the API names every body in one place."""

from typing import Annotated, Any, Literal

from pydantic import Field, StrictInt, field_validator, model_validator
from pydantic_core import PydanticCustomError

from domain.bounds import MAX_AMOUNT_MINOR
from services.change_inputs import ChangeOrderIn, CloseoutIn
from services.confirmation_inputs import ConfirmationId
from services.fields import Currency, Id, Ids, Kpis, Name, Percent, Strict, Text
from services.inputs import EngagementIn

__all__ = [
    "CancelIn",
    "ChangeOrderIn",
    "CloseoutIn",
    "CreditLineIn",
    "CreditNoteIn",
    "CustomerIn",
    "DecisionIn",
    "EngagementIn",
    "KpiReportIn",
    "PrincipalIn",
    "TriggerIn",
]


class PrincipalIn(Strict):
    name: Name
    email: Annotated[str, Field(strict=True, pattern=r"^[^@\s]+@[^@\s]+$", max_length=320)]


class CustomerIn(Strict):
    name: Name
    currency: Currency
    external_ref: Annotated[str, Field(max_length=200)] | None = None
    metadata: dict[str, Any] | None = None


class TriggerIn(Strict):
    source: Annotated[str, Field(strict=True, max_length=200)] = "api"
    completion_percent: Percent = "100"
    kpis: Kpis = {}
    evidence_ids: Ids = []
    external_ref: Annotated[str, Field(max_length=200)] | None = None
    note: Text | None = None
    # The regulator's confirmation of the filing this trigger bills; unique per engagement.
    confirmation_id: ConfirmationId | None = None
    # The SLA period the trigger reports on (``2026-11``, ``2026-W47``, ``2026-Q4``); default:
    # the period containing the trigger's receipt in the engagement calendar's time zone.
    period: Annotated[str, Field(strict=True, max_length=16)] | None = None


class DecisionIn(Strict):
    role: Id
    decision: Literal["approve", "reject"]
    comment: Annotated[str, Field(strict=True, max_length=4000)] = ""
    evidence_ids: Ids = []

    @model_validator(mode="after")
    def _reasoned_rejection(self) -> "DecisionIn":
        if self.decision == "reject" and not self.comment.strip():
            raise PydanticCustomError("comment", "a rejection needs a comment")
        return self


class CreditLineIn(Strict):
    invoice_line_id: Id
    amount_minor: Annotated[StrictInt, Field(gt=0, le=MAX_AMOUNT_MINOR)]  # how much to credit
    description: Annotated[str, Field(strict=True, min_length=1, max_length=2000)] | None = None


class CreditNoteIn(Strict):
    reason: Annotated[str, Field(strict=True, min_length=1, max_length=2000)]
    lines: list[CreditLineIn] = Field(min_length=1, max_length=500)

    @field_validator("reason")
    @classmethod
    def _stated(cls, reason: str) -> str:
        if not reason.strip():
            raise PydanticCustomError("reason", "a credit note needs a reason")
        return reason


class KpiReportIn(Strict):
    """A KPI measurement about a billed bonus, checked by its clawback watch."""

    kpis: Kpis = Field(min_length=1)
    evidence_ids: Ids = []
    source: Annotated[str, Field(strict=True, max_length=200)] = "api"
    note: Annotated[str, Field(max_length=2000)] | None = None


class CancelIn(Strict):
    reason: Annotated[str, Field(strict=True, min_length=1, max_length=2000, pattern=r"\S")]
