"""Change orders: proposed changes to an engagement, under dual sign-off."""

from typing import Any

from pydantic import Field

from api.models.base import ApiModel
from api.models.customers import CREATED_AT
from api.models.engagements import ENGAGEMENT_ID
from api.models.runs import STATUS_URL

CHANGE_ORDER_ID = "cho_01JC3QC3D4E5F6G7H8J9K0M1N2"
RUN_ID = f"change-order-{CHANGE_ORDER_ID}"


class ChangeOrderAccepted(ApiModel):
    """A proposal recorded and its sign-off started (or already started, for a repeat)."""

    id: str = Field(description="The change order's id.", examples=[CHANGE_ORDER_ID])
    run_id: str = Field(description="Its sign-off run.", examples=[RUN_ID])
    engagement_id: str = Field(description="The engagement to change.", examples=[ENGAGEMENT_ID])
    status: str = Field(
        description="proposed, applied, rejected, superseded …", examples=["proposed"]
    )
    base_version: int = Field(
        description="The engagement version the proposal was made against.", examples=[1]
    )
    status_url: str = Field(description="Where its run's status is read.", examples=[STATUS_URL])
    change_order_url: str = Field(
        description="Where the change order is read.",
        examples=[f"https://billing.example.com/v1/change-orders/{CHANGE_ORDER_ID}"],
    )


class ChangeOrder(ApiModel):
    id: str = Field(description="The change order's id.", examples=[CHANGE_ORDER_ID])
    engagement_id: str = Field(description="The engagement it changes.", examples=[ENGAGEMENT_ID])
    reason: str = Field(description="Why the change is proposed.", examples=["Scope grew"])
    changes: dict[str, Any] = Field(
        description="The proposed changes to unbilled milestones and the T&M terms (as proposed).",
        examples=[{"milestones": [{"key": "golive", "fee_minor": 1500000}]}],
    )
    status: str = Field(
        description="proposed, applied, rejected, superseded …", examples=["applied"]
    )
    base_version: int = Field(
        description="The engagement version it was proposed against.", examples=[1]
    )
    version: int | None = Field(
        description="The engagement version it made, once applied.", examples=[2]
    )
    run_id: str = Field(description="Its sign-off run.", examples=[RUN_ID])
    detail: str | None = Field(
        description="Why it ended as it did, when not applied.", examples=[None]
    )
    proposed_by: str = Field(description="Who proposed it.", examples=["admin"])
    created_at: str = Field(description="When it was proposed (ISO 8601).", examples=[CREATED_AT])
    decided_at: str | None = Field(
        description="When it was decided (ISO 8601).", examples=["2026-11-05T14:00:00Z"]
    )
