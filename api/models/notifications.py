"""Outbound notices: webhook endpoints, notifications and their delivery attempts."""

from pydantic import Field

from api.models.base import ApiModel, example_of
from api.models.customers import CREATED_AT
from api.models.engagements import ENGAGEMENT_ID
from api.models.runs import RUN_ID


class WebhookEndpoint(ApiModel):
    id: str = Field(description="The endpoint's id.", examples=["whe_01JC3QM1N2P3Q4R5S6T7U8V9W0"])
    url: str = Field(
        description="Where notices are posted.", examples=["https://erp.example.com/hooks/tollgate"]
    )
    events: list[str] = Field(
        description="The notice kinds sent there.", examples=[["invoice.finalized"]]
    )
    engagement_id: str | None = Field(
        description="The engagement whose notices go there.", examples=[ENGAGEMENT_ID]
    )
    customer_id: str | None = Field(
        description="The customer whose notices go there.", examples=[None]
    )
    active: bool = Field(description="Whether notices are sent to it.", examples=[True])
    secret: str = Field(
        description="The Standard Webhooks signing secret: in this response only.",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )
    created_at: str = Field(description="When it was registered (ISO 8601).", examples=[CREATED_AT])


class Notification(ApiModel):
    id: int = Field(description="The notification's id.", examples=[42])
    kind: str = Field(description="What it tells.", examples=["approval_requested"])
    run_id: str = Field(
        description="The run, invoice or credit note it is about.", examples=[RUN_ID]
    )
    channel: str = Field(description="email or webhook.", examples=["email"])
    recipient_id: str = Field(
        description="The principal or endpoint it goes to.",
        examples=["prn_01JC3Q8A0B1C2D3E4F5G6H7J8K"],
    )
    address: str | None = Field(
        description="The webhook URL (null for email: the principal's address).",
        examples=["dana@northwind.example"],
    )
    subject: str = Field(description="Its subject line.", examples=["Sign-off requested: Go-live"])
    status: str = Field(description="pending, delivered or dead.", examples=["delivered"])
    attempts: int = Field(description="Delivery attempts so far.", examples=[1])
    last_error: str | None = Field(description="The last attempt's error.", examples=[None])
    message_id: str = Field(
        description="The message's id (the webhook-id or Message-ID it is sent with).",
        examples=["msg_01JC3QN2P3Q4R5S6T7U8V9W0X1"],
    )
    created_at: str = Field(description="When it was queued (ISO 8601).", examples=[CREATED_AT])
    next_attempt_at: str = Field(
        description="When it is (or was) due to be tried next (ISO 8601).", examples=[CREATED_AT]
    )
    delivered_at: str | None = Field(
        description="When it was delivered (ISO 8601).", examples=["2026-11-03T09:15:02Z"]
    )


class Attempt(ApiModel):
    at: str = Field(description="When it was tried (ISO 8601).", examples=["2026-11-03T09:15:02Z"])
    outcome: str = Field(description="delivered, failed or refused.", examples=["delivered"])
    response_code: int | None = Field(
        description="The receiver's HTTP status or SMTP code.", examples=[250]
    )
    error: str | None = Field(description="What went wrong.", examples=[None])
    duration_ms: int = Field(description="How long the attempt took.", examples=[84])


class NotificationDetail(Notification):
    attempt_log: list[Attempt] = Field(
        description="Every attempt, oldest first.", examples=[[example_of(Attempt)]]
    )


class Redelivery(Notification):
    delivery: str = Field(
        description="`started`, or queued for the sweep when Temporal is unreachable.",
        examples=["started"],
    )
