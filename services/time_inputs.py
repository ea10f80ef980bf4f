"""Validated time-and-materials inputs: an engagement's T&M terms and the time entries posted
against them. Every amount, text and list is bounded, so nothing accepted can fail later."""

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StrictInt, model_validator
from pydantic_core import PydanticCustomError

from domain.bounds import MAX_AMOUNT_MINOR
from domain.delays import MAX_DELAY_BUSINESS_DAYS, MAX_DELAY_GRACE
from domain.time_billing import parse_hours
from services.fields import Id, MinorAmount, Name, RoleName, Strict, Text, checked_by

# hours x rate stays far below MAX_AMOUNT_MINOR for any entry (at most 24 hours).
MAX_RATE_MINOR = MAX_AMOUNT_MINOR // 100
MAX_BATCH_ENTRIES = 1000
# A line's run id is "time-period:<engagement>:<YYYY-MM>:<role>" and must fit in 120 characters.
MAX_TM_ROLE_CHARS = 60

# A year of delay at the advisory rate stays far below MAX_AMOUNT_MINOR too.
MAX_ADVISORY_RATE_MINOR = MAX_AMOUNT_MINOR // 1000

RateMinor = Annotated[StrictInt, Field(ge=0, le=MAX_RATE_MINOR)]
TmRole = Annotated[str, Field(strict=True, min_length=1, max_length=MAX_TM_ROLE_CHARS)]
AdvisoryRateMinor = Annotated[StrictInt, Field(ge=0, le=MAX_ADVISORY_RATE_MINOR)]
DelayGrace = Annotated[StrictInt, Field(ge=0, le=MAX_DELAY_GRACE)]
ExternalId = Annotated[str, Field(strict=True, min_length=1, max_length=200)]
Hours = Annotated[str, Field(strict=True, max_length=8), checked_by(parse_hours, "hours")]


class RateIn(Strict):
    """A role's hourly rate from ``effective_from`` on (omitted: from the start), with optional
    per-person rates. A later row for the same role replaces the earlier one whole."""

    role: TmRole
    rate_minor: RateMinor
    effective_from: dt.date | None = None
    people: Annotated[dict[Name, RateMinor], Field(max_length=200)] = {}


class TimeAndMaterialsIn(Strict):
    rate_card: list[RateIn] = Field(min_length=1, max_length=200)
    not_to_exceed_minor: MinorAmount | None = Field(
        default=None, description="The engagement's total T&M cap: work beyond it is not billed."
    )
    period_cap_minor: MinorAmount | None = Field(default=None, description="Each month's T&M cap.")
    minimum_minor: MinorAmount | None = Field(
        default=None, description="Each month's floor: a minimum_true_up line tops it up."
    )
    retention: StrictBool = Field(
        default=False, description="Withhold the engagement's retention percent on T&M too."
    )
    approval: StrictBool = Field(
        default=False,
        description="Each month's timesheet goes through the engagement's sign-off before it "
        "bills.",
    )
    advisory_rate_minor: AdvisoryRateMinor | None = Field(
        default=None,
        description="Per business day of client-caused delay (dependency_delay entries).",
    )
    delay_grace: DelayGrace | None = Field(
        default=None,
        description="Business days of delay on a milestone beyond which its deadlines move "
        "day-for-day; omitted: delays never move a deadline.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> "TimeAndMaterialsIn":
        seen = set()
        for row in self.rate_card:
            if (row.role, row.effective_from) in seen:
                raise PydanticCustomError(
                    "rate_card",
                    f"role {row.role!r} has two rows effective from "
                    f"{row.effective_from or 'the start'}",
                )
            seen.add((row.role, row.effective_from))
        for cap, name in (
            (self.period_cap_minor, "period_cap_minor"),
            (self.not_to_exceed_minor, "not_to_exceed_minor"),
        ):
            if self.minimum_minor is not None and cap is not None and self.minimum_minor > cap:
                raise PydanticCustomError(
                    "minimum", f"minimum_minor {self.minimum_minor} is above {name} {cap}"
                )
        return self


class TimeTermsChangeIn(Strict):
    """A change order's new T&M terms: the fields given replace the engagement's, those left
    out keep theirs; ``null`` clears a cap, the floor, the advisory rate or the grace.
    ``rate_card`` replaces the whole card. The terms they make are checked as at creation."""

    rate_card: list[RateIn] | None = Field(default=None, min_length=1, max_length=200)
    not_to_exceed_minor: MinorAmount | None = None
    period_cap_minor: MinorAmount | None = None
    minimum_minor: MinorAmount | None = None
    retention: StrictBool | None = None
    approval: StrictBool | None = None
    advisory_rate_minor: AdvisoryRateMinor | None = None
    delay_grace: DelayGrace | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> "TimeTermsChangeIn":
        if not self.model_fields_set:
            raise PydanticCustomError("changes", "nothing to change in time_and_materials")
        nulls = sorted(
            f
            for f in self.model_fields_set & {"rate_card", "retention", "approval"}
            if getattr(self, f) is None
        )
        if nulls:
            raise PydanticCustomError(
                "null", f"{', '.join(nulls)} may not be null (leave a field out to keep it)"
            )
        return self

    def as_change(self) -> dict[str, Any]:
        """Only the fields given, as JSON: what the change order stores and applies."""
        dumped = self.model_dump(mode="json")
        return {f: v for f, v in dumped.items() if f in self.model_fields_set}


class TimeEntryIn(Strict):
    """One time entry; ``correction_of`` reverses that entry and posts these values instead,
    ``adjustment`` books an entry dated in a closed period into the next open one."""

    external_id: ExternalId
    person: Name
    role: RoleName
    date: dt.date
    hours: Hours
    description: Text = ""
    milestone: Id | None = None
    correction_of: ExternalId | None = None
    adjustment: StrictBool = False


class DelayEntryIn(Strict):
    """Client-caused delay: ``business_days`` that ``caused_by`` held up ``milestone``, billed at
    the advisory rate; ``date`` books it into that month's period."""

    external_id: ExternalId
    kind: Literal["dependency_delay"]
    caused_by: Name
    milestone: Id
    business_days: Annotated[StrictInt, Field(ge=1, le=MAX_DELAY_BUSINESS_DAYS)]
    date: dt.date
    description: Text = ""
    correction_of: ExternalId | None = None
    adjustment: StrictBool = False


class TimeEntryBatchIn(Strict):
    """Up to 1,000 entries, each validated and applied on its own (per-row results)."""

    entries: list[dict] = Field(min_length=1, max_length=MAX_BATCH_ENTRIES)
