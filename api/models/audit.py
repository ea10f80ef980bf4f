"""The audit trail (a hash chain per engagement) and the evidence it cites."""

from typing import Any

from pydantic import Field

from api.models.base import ApiModel
from api.models.customers import CREATED_AT
from api.models.engagements import MILESTONE_ID
from api.models.runs import RUN_ID

HASH = "3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b"


class AuditEvent(ApiModel):
    seq: int = Field(description="Its position in the engagement's chain, from 1.", examples=[7])
    at: str = Field(description="When it happened (ISO 8601).", examples=[CREATED_AT])
    actor: str = Field(
        description="Who did it (admin, a principal, a token, tollgate).", examples=["admin"]
    )
    kind: str = Field(description="What happened.", examples=["trigger_received"])
    milestone_id: str | None = Field(
        description="The milestone concerned.", examples=[MILESTONE_ID]
    )
    run_id: str | None = Field(description="The run concerned.", examples=[RUN_ID])
    data: dict[str, Any] = Field(description="The event's facts.", examples=[{"source": "api"}])
    evidence: list[Any] = Field(description="Evidence cited.", examples=[[]])
    prev_hash: str = Field(description="The previous event's hash (sha256 hex).", examples=[HASH])
    hash: str = Field(
        description="sha256 over the previous hash and this event's canonical JSON.",
        examples=[HASH],
    )


class AuditCheck(ApiModel):
    ok: bool = Field(description="Whether every event's hash matches its chain.", examples=[True])
    events: int = Field(description="Events checked.", examples=[12])
    first_bad_seq: int | None = Field(
        description="The first event whose hash does not match, if any.", examples=[None]
    )


class Evidence(ApiModel):
    id: str = Field(description="The evidence's id.", examples=["evd_01JC3QE5F6G7H8J9K0M1N2P3Q4"])
    sha256: str = Field(
        description="sha256 of the file (hex); files are stored by it.", examples=[HASH]
    )
    size: int = Field(description="Size in bytes.", examples=[48213])
    content_type: str = Field(
        description="Media type it was uploaded with.", examples=["application/pdf"]
    )
    filename: str = Field(description="Name it was uploaded with.", examples=["uat-signoff.pdf"])
    description: str | None = Field(
        description="What it shows, if said.", examples=["UAT sign-off"]
    )
    created_at: str = Field(description="When it was uploaded (ISO 8601).", examples=[CREATED_AT])
