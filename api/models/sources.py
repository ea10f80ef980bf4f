"""Inbound sources (signed webhooks), their delivery log, and signed trigger URLs."""

from typing import Any

from pydantic import Field, RootModel

from api.models.base import ApiModel
from api.models.customers import CREATED_AT
from api.models.engagements import ENGAGEMENT_ID, MILESTONE_ID
from api.models.runs import RUN_ID, RunAccepted

SOURCE_ID = "src_01JC3QP3Q4R5S6T7U8V9W0X1Y2"
TRIGGER_URL_ID = "tgu_01JC3QQ4R5S6T7U8V9W0X1Y2Z3"


class Source(ApiModel):
    id: str = Field(description="The source's id.", examples=[SOURCE_ID])
    engagement_id: str = Field(description="The engagement it triggers.", examples=[ENGAGEMENT_ID])
    name: str = Field(description="Its name (the triggers' `source`).", examples=["jira"])
    kind: str = Field(description="A preset's name, or `custom`.", examples=["jira"])
    options: dict[str, Any] = Field(
        description="The preset's options.", examples=[{"done_status": "Done"}]
    )
    mapping: dict[str, Any] = Field(
        description="JMESPath expressions from a delivery's JSON to a trigger.",
        examples=[
            {"milestone": "issue.fields.labels[0]", "when": "issue.fields.status.name == 'Done'"}
        ],
    )
    url: str = Field(
        description="Where the source posts its deliveries.",
        examples=[f"https://billing.example.com/v1/hooks/{SOURCE_ID}"],
    )
    active: bool = Field(description="Whether deliveries are accepted.", examples=[True])
    previous_secret_valid_until: str | None = Field(
        description="While a rotated secret still verifies: until when (ISO 8601).",
        examples=[None],
    )
    created_at: str = Field(description="When it was registered (ISO 8601).", examples=[CREATED_AT])
    deactivated_at: str | None = Field(
        description="When it was deactivated (ISO 8601).", examples=[None]
    )


class SourceWithSecret(Source):
    secret: str = Field(
        description="The signing secret (Standard Webhooks): in this response only.",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )


class Delivery(ApiModel):
    id: str = Field(description="The delivery's id.", examples=["dlv_01JC3QR5S6T7U8V9W0X1Y2Z3A4"])
    webhook_id: str = Field(
        description="The sender's `webhook-id`.", examples=["msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"]
    )
    received_at: str = Field(description="When it arrived (ISO 8601).", examples=[CREATED_AT])
    outcome: str = Field(description="accepted, ignored or refused.", examples=["accepted"])
    status_code: int = Field(description="The HTTP status it was answered with.", examples=[202])
    reason: str | None = Field(description="Why it was ignored or refused.", examples=[None])
    response: dict[str, Any] = Field(
        description="The body it was answered with (the same again for a repeat).",
        examples=[{"run_id": RUN_ID, "milestone_id": MILESTONE_ID, "stage": "received"}],
    )
    run_id: str | None = Field(description="The run it started.", examples=[RUN_ID])
    payload_sha256: str = Field(
        description="sha256 of the payload (hex), kept as the trigger's evidence.",
        examples=["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"],
    )


class DeliveryIgnored(ApiModel):
    ignored: bool = Field(description="Always true.", examples=[True])
    reason: str = Field(
        description="Why the mapping's `when` left it out.", examples=["when evaluated to false"]
    )


class DeliveryAnswer(RootModel[RunAccepted | DeliveryIgnored]):
    """A delivery answered 200: ignored by the mapping, or the same trigger as before."""


class TriggerUrl(ApiModel):
    id: str = Field(description="The trigger URL's id.", examples=[TRIGGER_URL_ID])
    engagement_id: str = Field(description="The engagement.", examples=[ENGAGEMENT_ID])
    milestone_id: str = Field(description="The milestone it triggers.", examples=[MILESTONE_ID])
    created_at: str = Field(description="When it was issued (ISO 8601).", examples=[CREATED_AT])
    created_by: str = Field(description="Who issued it.", examples=["admin"])
    expires_at: str = Field(
        description="When it stops working (ISO 8601).", examples=["2026-12-03T09:15:00Z"]
    )
    max_uses: int | None = Field(
        description="How many uses it allows (null: no limit).", examples=[1]
    )
    uses: int = Field(description="Uses so far.", examples=[0])
    revoked_at: str | None = Field(description="When it was revoked (ISO 8601).", examples=[None])
    status: str = Field(description="active, expired, revoked or used-up.", examples=["active"])


class TriggerUrlIssued(TriggerUrl):
    url: str = Field(
        description="The signed URL to POST a trigger to: in this response only.",
        examples=["https://billing.example.com/v1/t/eyJpZCI6InRndV8wMSJ9.c2ln"],
    )
