"""Customers, principals (approvers) and integration tokens."""

from typing import Any

from pydantic import Field

from api.models.base import ApiModel

CUSTOMER_ID = "cus_01JC3Q7Z8K4V2M6N9P0R5T1W3X"
CREATED_AT = "2026-11-03T09:15:00Z"


class Customer(ApiModel):
    id: str = Field(description="The customer's id.", examples=[CUSTOMER_ID])
    name: str = Field(description="The customer's name.", examples=["Northwind Health"])
    currency: str = Field(
        description="ISO 4217 code every engagement and invoice of the customer uses.",
        examples=["EUR"],
    )
    external_ref: str | None = Field(
        description="Your own reference for the customer (CRM id), if given.",
        examples=["crm-4411"],
    )
    metadata: dict[str, Any] = Field(
        description="Free-form JSON kept with the customer (`payer_id` names its payer).",
        examples=[{"payer_id": "payer-aok"}],
    )
    created_at: str = Field(
        description="When it was created (ISO 8601, UTC).", examples=[CREATED_AT]
    )


class Principal(ApiModel):
    id: str = Field(description="The principal's id.", examples=["prn_01JC3Q8A0B1C2D3E4F5G6H7J8K"])
    name: str = Field(description="The principal's name.", examples=["Dana Whitfield"])
    email: str = Field(
        description="Where approval requests and escalations are sent.",
        examples=["dana@northwind.example"],
    )
    token: str = Field(
        description="The principal's bearer token: shown in this response only, stored hashed.",
        examples=["tgp_4n8Qx2vVb0s1yJk9m3Zr7hTq5wLc6eUa"],
    )


class IntegrationToken(ApiModel):
    id: str = Field(description="The token's id.", examples=["itk_01JC3Q9B2C3D4E5F6G7H8J9K0M"])
    engagement_id: str = Field(
        description="The engagement whose triggers the token may post.",
        examples=["eng_01JC3QA1B2C3D4E5F6G7H8J9K0"],
    )
    token: str = Field(
        description="The bearer token: shown in this response only, stored hashed.",
        examples=["tgi_Zr7hTq5wLc6eUa4n8Qx2vVb0s1yJk9m3"],
    )
