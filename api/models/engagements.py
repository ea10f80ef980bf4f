"""Engagements: their terms, milestones and state, as they stand or stood at a version."""

from typing import Any

from pydantic import Field, RootModel, create_model

from api.models.base import ApiModel, example_of
from api.models.customers import CREATED_AT, CUSTOMER_ID

ENGAGEMENT_ID = "eng_01JC3QA1B2C3D4E5F6G7H8J9K0"
MILESTONE_ID = "mst_01JC3QB2C3D4E5F6G7H8J9K0M1"
SPAN = {"duration": "P30D"}


class Retention(ApiModel):
    percent: str = Field(
        description="Share of each billed amount held back, a decimal string.", examples=["5"]
    )
    release: str = Field(
        description="When the held retention is released.", examples=["on_final_signoff"]
    )
    release_delay: dict[str, Any] | None = Field(
        description="How long after the final sign-off it is released (a span), if at all.",
        examples=[SPAN],
    )


class Dependency(ApiModel):
    milestone: str = Field(description="Key of the milestone depended on.", examples=["design"])
    milestone_id: str = Field(
        description="Id of the milestone depended on.", examples=["mst_01JC3QB0A1B2C3D4E5F6G7H8J9"]
    )
    kpi: dict[str, Any] | None = Field(
        description="A KPI condition the dependency must meet, if any.",
        examples=[{"metric": "uptime", "op": ">=", "threshold": "99.5"}],
    )


class TimeTerms(ApiModel):
    rate_card: list[dict[str, Any]] = Field(
        description="Hourly rates by role (minor units per hour), optionally per person and "
        "effective date.",
        examples=[[{"role": "senior", "rate_minor": 15000, "effective_from": None, "people": {}}]],
    )
    not_to_exceed_minor: int | None = Field(
        description="Cap on everything billed, in minor units.", examples=[5000000]
    )
    period_cap_minor: int | None = Field(
        description="Cap per billing period, in minor units.", examples=[1000000]
    )
    minimum_minor: int | None = Field(
        description="Minimum billed per period, in minor units.", examples=[None]
    )
    retention: bool = Field(
        description="Whether the engagement's retention applies to time billed.", examples=[True]
    )
    approval: bool = Field(
        description="Whether each month's timesheet is signed off before it bills.",
        examples=[False],
    )
    advisory_rate_minor: int | None = Field(
        description="Per business day of client-caused delay, in minor units.", examples=[None]
    )
    delay_grace: int | None = Field(
        description="Business days of delay on a milestone beyond which its deadlines move.",
        examples=[None],
    )


class EngagementMilestone(ApiModel):
    id: str = Field(description="The milestone's id.", examples=[MILESTONE_ID])
    key: str = Field(description="The key it is named by in the engagement.", examples=["golive"])
    name: str = Field(description="The milestone's name.", examples=["Go-live"])
    kind: str = Field(description="standard, bonus or success_fee.", examples=["standard"])
    fee_minor: int = Field(description="The fee, in minor units.", examples=[1200000])
    fee_basis: dict[str, Any] | None = Field(
        description="How a success fee is computed, for success_fee milestones.", examples=[None]
    )
    deadline: str | None = Field(
        description="The bonus deadline (ISO 8601), for bonus milestones.", examples=[None]
    )
    clawback: dict[str, Any] | None = Field(
        description="Clawback terms: the KPI watched after billing and the share clawed back.",
        examples=[None],
    )
    success_fee: dict[str, Any] | None = Field(
        description="Success-fee terms, for success_fee milestones.", examples=[None]
    )
    trigger: str = Field(
        description="Who may trigger it: `api` (admin or integration token) or others.",
        examples=["api"],
    )
    allow_partial: bool = Field(
        description="Whether a trigger may report partial completion.", examples=[False]
    )
    repeatable: bool = Field(
        description="Whether it bills more than once (per filing or period).", examples=[False]
    )
    period: str | None = Field(
        description="For SLA milestones: the period billed once each (monthly, weekly, quarterly).",
        examples=[None],
    )
    service_credit_minor: int | None = Field(
        description="For SLA milestones: credited on the next invoice for each period judged "
        "not_met, in minor units.",
        examples=[None],
    )
    report_grace_days: int | None = Field(
        description="For SLA milestones: days after a period ends that late reports still "
        "count before it is judged (null: the default, 3).",
        examples=[None],
    )
    confirmation: dict[str, Any] | None = Field(
        description="Whether triggers carry a regulator's confirmation id, and its pattern.",
        examples=[None],
    )
    acceptance_criteria: list[Any] = Field(
        description="Criteria checked on each trigger before sign-off.", examples=[[]]
    )
    depends_on: list[Dependency] = Field(
        description="Milestones that must be accepted first.", examples=[[]]
    )
    status: str = Field(
        description="pending, in_progress, accepted, billed, waived …", examples=["pending"]
    )
    accepted_percent: str = Field(
        description="Share accepted so far, a decimal string.", examples=["0"]
    )
    billed_minor: int = Field(description="Billed so far, in minor units.", examples=[0])
    retention_held_minor: int = Field(
        description="Retention held on it, in minor units.", examples=[0]
    )
    open_run_id: str | None = Field(
        description="The run in progress for it, if one is.", examples=[None]
    )


class Engagement(ApiModel):
    id: str = Field(description="The engagement's id.", examples=[ENGAGEMENT_ID])
    customer_id: str = Field(description="The customer billed.", examples=[CUSTOMER_ID])
    name: str = Field(description="The engagement's name.", examples=["EHR migration"])
    currency: str = Field(description="ISO 4217 code of every amount.", examples=["EUR"])
    status: str = Field(description="active, closing or closed.", examples=["active"])
    version: int = Field(
        description="Its version: 1, then one more per applied change order.", examples=[1]
    )
    retention: Retention = Field(
        description="The retention terms.", examples=[example_of(Retention)]
    )
    approval: dict[str, Any] = Field(
        description="The sign-off policy: roles and who holds them, reminders, escalation, "
        "deemed acceptance, expiry and the business calendar.",
        examples=[{"roles": {"client_pm": ["prn_01JC3Q8A0B1C2D3E4F5G6H7J8K"]}}],
    )
    payment_terms: dict[str, Any] | None = Field(
        description="How long after issue an invoice is due (a span).", examples=[SPAN]
    )
    retention_balance_minor: int = Field(
        description="Retention held and not yet released, in minor units.", examples=[60000]
    )
    time_and_materials: TimeTerms | None = Field(
        description="Time-and-materials terms, if the engagement bills time.",
        examples=[example_of(TimeTerms)],
    )
    created_at: str = Field(description="When it was created (ISO 8601).", examples=[CREATED_AT])
    milestones: list[EngagementMilestone] = Field(
        description="Its milestones, in order.", examples=[[example_of(EngagementMilestone)]]
    )


class EngagementItem(ApiModel):
    """An engagement in the admin's list (without its terms)."""

    id: str = Field(description="The engagement's id.", examples=[ENGAGEMENT_ID])
    customer_id: str = Field(description="The customer billed.", examples=[CUSTOMER_ID])
    name: str = Field(description="The engagement's name.", examples=["EHR migration"])
    currency: str = Field(description="ISO 4217 code of every amount.", examples=["EUR"])
    status: str = Field(description="active, closing or closed.", examples=["active"])
    version: int = Field(description="Its current version.", examples=[1])
    created_at: str = Field(description="When it was created (ISO 8601).", examples=[CREATED_AT])


def _as_it_stood() -> dict[str, Any]:
    """The engagement's fields, each optional: a version shows the keys it was stored with."""
    fields: dict[str, Any] = {}
    for name, info in Engagement.model_fields.items():
        kind = list[dict[str, Any]] if name == "milestones" else info.annotation
        described = Field(default=None, description=info.description, examples=info.examples)
        fields[name] = (kind | None, described)
    return fields


EngagementVersion = create_model(
    "EngagementVersion",
    __base__=ApiModel,
    __doc__="The engagement as it stood when a version took effect (its figures as of then).",
    **_as_it_stood(),
    version_created_at=(
        str | None,
        Field(description="When this version took effect (ISO 8601).", examples=[CREATED_AT]),
    ),
    change_order_id=(
        str | None,
        Field(
            description="The change order that made this version (null for version 1).",
            examples=["cho_01JC3QC3D4E5F6G7H8J9K0M1N2"],
        ),
    ),
)


class EngagementAsOf(RootModel[Engagement | EngagementVersion]):  # type: ignore[valid-type]
    """The engagement now, or as it stood at the version asked for."""
