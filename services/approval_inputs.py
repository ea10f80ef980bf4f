"""An engagement's sign-off policy as the services take it: who decides in which role, the
business calendar its deadlines are counted on, and when silence escalates, warns, accepts or
expires."""

from datetime import date
from typing import Annotated, Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from domain.calendar import BusinessCalendar, validate_calendar
from services.fields import Ids, RoleName, Span, Strict

# Silent client roles are warned one business day before their silence accepts.
DEFAULT_DEEMED_WARNING = {"business_days": 1}


class CalendarIn(Strict):
    country: Annotated[str, Field(max_length=10)] | None = None
    subdivision: Annotated[str, Field(max_length=10)] | None = None
    timezone: Annotated[str, Field(max_length=64)] = "UTC"
    extra_holidays: Annotated[list[date], Field(max_length=1000)] = []

    @model_validator(mode="after")
    def _known(self) -> "CalendarIn":
        try:
            validate_calendar(
                BusinessCalendar(
                    self.country, self.subdivision, self.timezone, tuple(self.extra_holidays)
                )
            )
        except ValueError as exc:
            raise PydanticCustomError("calendar", str(exc)) from None
        return self


class ApprovalIn(Strict):
    roles: dict[RoleName, Ids] = Field(min_length=1, max_length=20)
    escalation: Annotated[dict[RoleName, Ids], Field(max_length=20)] = {}
    client_roles: list[RoleName] | None = Field(
        max_length=20,
        default=None,
        description="Roles deemed to accept by silence; defaults to client_ap when present.",
    )
    reminder_after: Span = None
    escalate_after: Span = None
    deemed_acceptance_after: Span = None
    expire_after: Span = None
    deemed_warning_before: Span = Field(
        default_factory=lambda: dict(DEFAULT_DEEMED_WARNING),
        description="How long before deemed acceptance the client roles are warned; "
        "null or 0 business days: no warning.",
    )
    calendar: CalendarIn = CalendarIn()
    encounters: Literal["bill", "sign_off"] = Field(
        default="bill",
        description="bill: every accepted encounter batch bills at once; sign_off: each batch "
        "goes through this sign-off first (one run per batch) and bills only once approved.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> "ApprovalIn":
        for role, principals in self.roles.items():
            if not principals:
                raise PydanticCustomError("roles", f"role {role!r} needs at least one principal")
        for role in [*self.escalation, *(self.client_roles or [])]:
            if role not in self.roles:
                raise PydanticCustomError("roles", f"role {role!r} is not one of the roles")
        if self.client_roles is None:
            self.client_roles = [r for r in self.roles if r == "client_ap"]
        return self

    def principal_ids(self) -> set[str]:
        return {p for ids in [*self.roles.values(), *self.escalation.values()] for p in ids}
