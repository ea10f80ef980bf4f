"""Validated close-out and change-order requests, as the services take them."""

from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BeforeValidator,
    Field,
    StrictBool,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from services.fields import Id, Ids, MinorAmount, Name, Strict
from services.inputs import CriterionIn, DependencyIn, MilestoneIn
from services.time_inputs import TimeTermsChangeIn


class WaiverIn(Strict):
    milestone: Annotated[str, Field(strict=True, min_length=1, max_length=100)]
    reason: Annotated[str, Field(strict=True, min_length=1, max_length=2000)]

    @field_validator("reason")
    @classmethod
    def _stated(cls, reason: str) -> str:
        if not reason.strip():
            raise PydanticCustomError("reason", "a waiver needs a reason")
        return reason


class CloseoutIn(Strict):
    waive: list[WaiverIn] = []
    note: Annotated[str, Field(strict=True, max_length=2000)] | None = None

    @field_validator("waive")
    @classmethod
    def _once_each(cls, waive: list[WaiverIn]) -> list[WaiverIn]:
        keys = [w.milestone for w in waive]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise PydanticCustomError("waive", f"milestones waived more than once: {duplicates}")
        return waive


def _timestamp_text(value: Any) -> Any:
    """A schedule is an RFC 3339 timestamp; numbers are refused rather than read as epochs."""
    if value is not None and not isinstance(value, str):
        raise PydanticCustomError(
            "deadline", "a deadline is an RFC 3339 timestamp such as 2026-09-30T17:00:00Z, or null"
        )
    return value


class MilestoneChangeIn(Strict):
    """The fields to change on one unbilled milestone; fields left out keep their value.
    ``deadline: null`` clears the deadline; no other field may be null."""

    milestone: Id
    name: Name | None = None
    fee_minor: MinorAmount | None = None
    trigger: Literal["manual", "automatic", "both"] | None = None
    allow_partial: StrictBool | None = None
    acceptance_criteria: Annotated[list[CriterionIn], Field(max_length=100)] | None = None
    depends_on: Annotated[list[DependencyIn], Field(max_length=100)] | None = None
    deadline: Annotated[AwareDatetime | None, BeforeValidator(_timestamp_text)] = None

    @model_validator(mode="after")
    def _something_to_change(self) -> "MilestoneChangeIn":
        given = self.model_fields_set - {"milestone"}
        if not given:
            raise PydanticCustomError("changes", f"nothing to change on {self.milestone}")
        nulls = sorted(f for f in given - {"deadline"} if getattr(self, f) is None)
        if nulls:
            raise PydanticCustomError(
                "null", f"{', '.join(nulls)} may not be null (leave a field out to keep it)"
            )
        return self

    def as_change(self) -> dict[str, Any]:
        """Only the fields given, as JSON: what the change order stores and applies."""
        dumped = self.model_dump(mode="json")
        return {f: v for f, v in dumped.items() if f == "milestone" or f in self.model_fields_set}


class ChangesIn(Strict):
    update: list[MilestoneChangeIn] = Field(default=[], max_length=100)
    add: list[MilestoneIn] = Field(default=[], max_length=100)
    remove: Ids = []
    time_and_materials: TimeTermsChangeIn | None = Field(
        default=None,
        description="New time-and-materials terms (the fields given replace the engagement's); "
        "on an engagement without T&M, with a rate_card, they add T&M.",
    )

    def as_changes(self) -> dict[str, Any]:
        changes: dict[str, Any] = {
            "update": [u.as_change() for u in self.update],
            "add": [m.model_dump(mode="json", exclude_unset=True) for m in self.add],
            "remove": list(self.remove),
        }
        if self.time_and_materials is not None:
            changes["time_and_materials"] = self.time_and_materials.as_change()
        return changes


class ChangeOrderIn(Strict):
    reason: Annotated[str, Field(strict=True, min_length=1, max_length=2000)]
    changes: ChangesIn

    @field_validator("reason")
    @classmethod
    def _stated(cls, reason: str) -> str:
        if not reason.strip():
            raise PydanticCustomError("reason", "a change order needs a reason")
        return reason
