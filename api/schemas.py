"""Request bodies. Unknown fields are refused; money is a strict non-negative int; percents are
decimal strings; each rule is checked by the domain function that owns it."""

from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from domain.calendar import BusinessCalendar, parse_span, validate_calendar
from domain.criteria import OPERATORS, Criterion, validate_criterion
from domain.dependencies import find_cycle, unknown_dependencies
from domain.money import currency_exponent, parse_percent


def _refuse_nul(value: Any) -> Any:
    """PostgreSQL text cannot hold NUL characters: refuse them in any string or key."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str) and "\x00" in item:
            raise PydanticCustomError("nul", "text must not contain NUL (\\u0000) characters")
        if isinstance(item, dict):
            pending += [*item.keys(), *item.values()]
        elif isinstance(item, list | tuple):
            pending += item
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return _refuse_nul(value)


def _checked_by(rule: Callable[[Any], object], kind: str) -> AfterValidator:
    """Validate a field with the domain function that owns the rule; keep the value as given."""

    def check(value: Any) -> Any:
        try:
            rule(value)
        except ValueError as exc:
            raise PydanticCustomError(kind, str(exc)) from None
        return value

    return AfterValidator(check)


def _kpi_value(value: Any) -> str:
    """KPIs are decimal strings (or integers); floats are refused so nothing is rounded silently."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PydanticCustomError("kpi", 'a KPI value must be a decimal string such as "0.4"')
    text = str(value)
    try:
        if not Decimal(text).is_finite():
            raise InvalidOperation
    except InvalidOperation:
        raise PydanticCustomError("kpi", f"{text!r} is not a decimal number") from None
    return text


Percent = Annotated[str, Field(strict=True, max_length=16), _checked_by(parse_percent, "percent")]
Currency = Annotated[str, Field(strict=True), _checked_by(currency_exponent, "currency")]
Span = Annotated[dict[str, Any] | None, _checked_by(parse_span, "duration")]
MinorAmount = Annotated[StrictInt, Field(ge=0, le=2**63 - 1)]  # a BIGINT column
Name = Annotated[str, Field(strict=True, min_length=1, max_length=200)]
Id = Annotated[str, Field(strict=True, min_length=1, max_length=120)]
RoleName = Annotated[str, Field(strict=True, min_length=1, max_length=100)]
KpiValue = Annotated[str, BeforeValidator(_kpi_value)]


class PrincipalIn(Strict):
    name: Name
    email: Annotated[str, Field(strict=True, pattern=r"^[^@\s]+@[^@\s]+$", max_length=320)]


class CustomerIn(Strict):
    name: Name
    currency: Currency
    external_ref: Annotated[str, Field(max_length=200)] | None = None
    metadata: dict[str, Any] | None = None


class CalendarIn(Strict):
    country: str | None = None
    subdivision: str | None = None
    timezone: str = "UTC"
    extra_holidays: list[date] = []

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
    roles: dict[RoleName, list[Id]] = Field(min_length=1)
    escalation: dict[RoleName, list[Id]] = {}
    client_roles: list[str] | None = Field(
        default=None,
        description="Roles deemed to accept by silence; defaults to client_ap when present.",
    )
    reminder_after: Span = None
    escalate_after: Span = None
    deemed_acceptance_after: Span = None
    expire_after: Span = None
    calendar: CalendarIn = CalendarIn()

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


class RetentionIn(Strict):
    percent: Percent = "0"
    release: Literal["on_final_signoff"] = "on_final_signoff"
    release_delay: Span = None


class CriterionIn(Strict):
    id: Id
    description: str = ""
    metric: str | None = None
    op: Literal[OPERATORS] | None = None  # type: ignore[valid-type]
    threshold: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> "CriterionIn":
        try:
            validate_criterion(Criterion(**self.model_dump()))
        except ValueError as exc:
            raise PydanticCustomError("criterion", str(exc)) from None
        return self


class KpiGateIn(Strict):
    metric: Annotated[str, Field(min_length=1)]
    op: Literal[OPERATORS]  # type: ignore[valid-type]
    threshold: KpiValue


class DependencyIn(Strict):
    milestone: Id
    kpi: KpiGateIn | None = None


class MilestoneIn(Strict):
    key: Annotated[str, Field(strict=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")]
    name: Name
    fee_minor: MinorAmount
    trigger: Literal["manual", "automatic", "both"] = "manual"
    depends_on: list[DependencyIn] = []
    allow_partial: StrictBool = False
    acceptance_criteria: list[CriterionIn] = []

    @model_validator(mode="after")
    def _automatic_needs_a_check(self) -> "MilestoneIn":
        if self.trigger == "automatic" and not any(c.metric for c in self.acceptance_criteria):
            raise PydanticCustomError(
                "trigger", "an automatic milestone needs at least one machine-checkable criterion"
            )
        return self


class EngagementIn(Strict):
    customer_id: Id
    name: Name
    currency: Currency
    retention: RetentionIn = RetentionIn()
    approval: ApprovalIn
    milestones: list[MilestoneIn] = Field(min_length=1)

    @model_validator(mode="after")
    def _graph(self) -> "EngagementIn":
        keys = [m.key for m in self.milestones]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise PydanticCustomError("milestones", f"duplicate milestone keys: {duplicates}")
        edges = {m.key: [d.milestone for d in m.depends_on] for m in self.milestones}
        unknown = unknown_dependencies(edges)
        if unknown:
            pairs = ", ".join(f"{k} → {d}" for k, d in unknown)
            raise PydanticCustomError("milestones", f"unknown depends_on: {pairs}")
        cycle = find_cycle(edges)
        if cycle:
            raise PydanticCustomError("milestones", f"cyclic depends_on: {' → '.join(cycle)}")
        return self


class TriggerIn(Strict):
    source: Annotated[str, Field(strict=True, max_length=200)] = "api"
    completion_percent: Percent = "100"
    kpis: dict[str, KpiValue] = {}
    evidence_ids: list[Id] = []
    external_ref: Annotated[str, Field(max_length=200)] | None = None
    note: Annotated[str, Field(max_length=2000)] | None = None


class DecisionIn(Strict):
    role: Id
    decision: Literal["approve", "reject"]
    comment: Annotated[str, Field(strict=True, max_length=4000)] = ""
    evidence_ids: list[Id] = []

    @model_validator(mode="after")
    def _reasoned_rejection(self) -> "DecisionIn":
        if self.decision == "reject" and not self.comment.strip():
            raise PydanticCustomError("comment", "a rejection needs a comment")
        return self
