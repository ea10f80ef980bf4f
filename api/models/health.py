"""The health check."""

from pydantic import Field

from api.models.base import ApiModel


class Health(ApiModel):
    status: str = Field(description="ok, or unavailable (then the answer is 503).", examples=["ok"])
    database: str = Field(description="ok, or the error the database check met.", examples=["ok"])
    temporal: str = Field(
        description="ok, unreachable, or the error the Temporal check met.", examples=["ok"]
    )
