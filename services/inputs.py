"""Validated inputs the services take: engagements with their milestones, change orders and
close-outs. Unknown fields are refused; money is a strict non-negative int; percents are decimal
strings; each rule is checked by the domain function that owns it. Every amount, text, list and
KPI payload is bounded (``domain.bounds``), so nothing accepted can fail later.

The API takes them as request bodies (``api/schemas.py`` re-exports them), and activities
re-validate stored milestones with them, so one model holds each rule."""

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from domain.bounds import MAX_AMOUNT_MINOR, MAX_DECIMAL_CHARS, MAX_KPI_NAME_CHARS, MAX_KPIS
from domain.calendar import BusinessCalendar, parse_span, validate_calendar
from domain.criteria import OPERATORS, Criterion, validate_criterion
from domain.dependencies import find_cycle, unknown_dependencies
from domain.money import currency_exponent, parse_percent
from domain.success_fee import InvalidSuccessFee, parse_success_fee_terms


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
    if isinstance(value, int) and abs(value) >= 10**MAX_DECIMAL_CHARS:
        raise PydanticCustomError("kpi", f"a KPI value has at most {MAX_DECIMAL_CHARS} digits")
    text = str(value)
    if len(text) > MAX_DECIMAL_CHARS:
        raise PydanticCustomError(
            "kpi", f"a KPI value is at most {MAX_DECIMAL_CHARS} characters long"
        )
    try:
        if not Decimal(text).is_finite():
            raise InvalidOperation
    except InvalidOperation:
        raise PydanticCustomError("kpi", f"{text!r} is not a decimal number") from None
    return text


Percent = Annotated[str, Field(strict=True, max_length=16), _checked_by(parse_percent, "percent")]
Currency = Annotated[str, Field(strict=True), _checked_by(currency_exponent, "currency")]
Span = Annotated[dict[str, Any] | None, _checked_by(parse_span, "duration")]
MinorAmount = Annotated[StrictInt, Field(ge=0, le=MAX_AMOUNT_MINOR)]
Name = Annotated[str, Field(strict=True, min_length=1, max_length=200)]
Id = Annotated[str, Field(strict=True, min_length=1, max_length=120)]
RoleName = Annotated[str, Field(strict=True, min_length=1, max_length=100)]
KpiValue = Annotated[str, BeforeValidator(_kpi_value)]
KpiName = Annotated[str, Field(strict=True, min_length=1, max_length=MAX_KPI_NAME_CHARS)]
Kpis = Annotated[dict[KpiName, KpiValue], Field(max_length=MAX_KPIS)]
Text = Annotated[str, Field(strict=True, max_length=2000)]
Ids = Annotated[list[Id], Field(max_length=100)]


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
    description: Text = ""
    metric: KpiName | None = None
    op: Literal[OPERATORS] | None = None  # type: ignore[valid-type]
    threshold: Annotated[str, Field(max_length=MAX_DECIMAL_CHARS)] | None = None

    @model_validator(mode="after")
    def _complete(self) -> "CriterionIn":
        try:
            validate_criterion(Criterion(**self.model_dump()))
        except ValueError as exc:
            raise PydanticCustomError("criterion", str(exc)) from None
        return self


class KpiGateIn(Strict):
    metric: KpiName
    op: Literal[OPERATORS]  # type: ignore[valid-type]
    threshold: KpiValue


class DependencyIn(Strict):
    milestone: Id
    kpi: KpiGateIn | None = None


def _above_zero(percent: str) -> str:
    if Decimal(percent) == 0:
        raise PydanticCustomError("percent", "percentage must be more than zero")
    return percent


PositivePercent = Annotated[Percent, AfterValidator(_above_zero)]


class FeePercentOfIn(Strict):
    """A bonus fee set as a percent of another, standard, milestone's fee (resolved at creation)."""

    milestone: Id
    percent: PositivePercent


class ClawbackIn(Strict):
    """A billed bonus is watched for ``window``; a KPI report that breaks ``kpi`` within it
    claws back ``percent`` of the bonus."""

    window: Annotated[dict[str, Any], _checked_by(parse_span, "duration")]
    kpi: KpiGateIn
    percent: PositivePercent = "100"

    @field_validator("window")
    @classmethod
    def _not_empty(cls, window: dict[str, Any]) -> dict[str, Any]:
        if window == {"business_days": 0}:
            raise PydanticCustomError("duration", "a clawback window must be longer than zero")
        return window

    @field_validator("kpi")
    @classmethod
    def _checkable(cls, kpi: KpiGateIn) -> KpiGateIn:
        try:
            validate_criterion(Criterion("clawback", "", kpi.metric, kpi.op, kpi.threshold))
        except ValueError as exc:
            raise PydanticCustomError("kpi", str(exc)) from None
        return kpi


def _kind_of(info: ValidationInfo) -> str | None:
    """The milestone's kind, when it validated (fields are validated in declaration order)."""
    return info.data.get("kind")


class MilestoneIn(Strict):
    """A milestone; ``kind`` decides which fee fields apply (each misuse is a 422 naming it)."""

    key: Annotated[str, Field(strict=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")]
    name: Name
    kind: Literal["standard", "bonus", "success_fee"] = "standard"
    fee_minor: Annotated[MinorAmount | None, Field(validate_default=True)] = None
    fee_percent_of: Annotated[FeePercentOfIn | None, Field(validate_default=True)] = None
    trigger: Literal["manual", "automatic", "both"] = "manual"
    depends_on: Annotated[list[DependencyIn], Field(max_length=100)] = []
    deadline: AwareDatetime | None = None
    clawback: ClawbackIn | None = None
    success_fee: Annotated[dict[str, Any] | None, Field(validate_default=True)] = None
    allow_partial: StrictBool = False
    acceptance_criteria: Annotated[list[CriterionIn], Field(max_length=100)] = []

    @field_validator("fee_minor")
    @classmethod
    def _fee(cls, fee: int | None, info: ValidationInfo) -> int | None:
        kind = _kind_of(info)
        if kind == "standard" and fee is None:
            raise PydanticCustomError("fee", "a milestone needs fee_minor")
        if kind == "success_fee" and fee is not None:
            raise PydanticCustomError(
                "fee", "a success fee is computed from its success_fee terms: omit fee_minor"
            )
        return fee

    @field_validator("fee_percent_of")
    @classmethod
    def _basis(cls, basis: FeePercentOfIn | None, info: ValidationInfo) -> FeePercentOfIn | None:
        kind = _kind_of(info)
        if basis is not None and kind not in (None, "bonus"):
            raise PydanticCustomError("fee", "only a bonus may set its fee as fee_percent_of")
        fee_given = info.data.get("fee_minor") is not None
        if kind == "bonus" and "fee_minor" in info.data and (basis is not None) == fee_given:
            raise PydanticCustomError(
                "fee", "a bonus needs exactly one of fee_minor and fee_percent_of"
            )
        return basis

    @field_validator("deadline")
    @classmethod
    def _deadline(cls, deadline: datetime | None, info: ValidationInfo) -> datetime | None:
        if deadline is not None and _kind_of(info) == "standard":
            raise PydanticCustomError(
                "deadline", "only a bonus or a success fee has a deadline to qualify by"
            )
        return deadline

    @field_validator("clawback")
    @classmethod
    def _clawback(cls, clawback: ClawbackIn | None, info: ValidationInfo) -> ClawbackIn | None:
        if clawback is not None and _kind_of(info) not in (None, "bonus"):
            raise PydanticCustomError("clawback", "only a bonus can be clawed back")
        return clawback

    @field_validator("success_fee")
    @classmethod
    def _success_fee(
        cls, terms: dict[str, Any] | None, info: ValidationInfo
    ) -> dict[str, Any] | None:
        """Checked here for presence; the terms themselves by EngagementIn, which knows the
        currency their baseline is in."""
        kind = _kind_of(info)
        if kind == "success_fee" and terms is None:
            raise PydanticCustomError(
                "success_fee", "a success_fee milestone needs its success_fee terms"
            )
        if terms is not None and kind not in (None, "success_fee"):
            raise PydanticCustomError(
                "success_fee", "only a milestone of kind success_fee has success_fee terms"
            )
        return terms

    @field_validator("allow_partial")
    @classmethod
    def _billed_whole(cls, allow_partial: bool, info: ValidationInfo) -> bool:
        if allow_partial and _kind_of(info) == "success_fee":
            raise PydanticCustomError("partial", "a success fee is billed whole, never partially")
        if allow_partial and info.data.get("clawback") is not None:
            raise PydanticCustomError(
                "partial", "a bonus under clawback is billed whole, never partially"
            )
        return allow_partial

    @model_validator(mode="after")
    def _automatic_needs_a_check(self) -> "MilestoneIn":
        if self.trigger == "automatic" and not any(c.metric for c in self.acceptance_criteria):
            raise PydanticCustomError(
                "trigger", "an automatic milestone needs at least one machine-checkable criterion"
            )
        return self


def commercial_term_errors(milestones: list[MilestoneIn], currency: str | None) -> list[str]:
    """A bonus's fee basis must be a standard milestone among them; success-fee terms must hold
    in the engagement's currency (skipped when the currency itself is invalid)."""
    kinds = {m.key: m.kind for m in milestones}
    errors = []
    for i, m in enumerate(milestones):
        if m.fee_percent_of is not None:
            basis = m.fee_percent_of.milestone
            if basis not in kinds:
                errors.append(f"milestones.{i}.fee_percent_of: unknown milestone {basis!r}")
            elif kinds[basis] != "standard":
                errors.append(
                    f"milestones.{i}.fee_percent_of: {basis!r} is a {kinds[basis]} milestone; "
                    "a bonus is a percent of a standard milestone's fee"
                )
        if m.success_fee is not None and currency is not None:
            try:
                parse_success_fee_terms(m.success_fee, currency)
            except InvalidSuccessFee as exc:
                errors.append(f"milestones.{i}.success_fee: {exc}")
    return errors


class EngagementIn(Strict):
    customer_id: Id
    name: Name
    currency: Currency
    retention: RetentionIn = RetentionIn()
    approval: ApprovalIn
    milestones: list[MilestoneIn] = Field(min_length=1, max_length=500)
    payment_terms: Span = None

    @field_validator("milestones")
    @classmethod
    def _commercial_terms(
        cls, milestones: list[MilestoneIn], info: ValidationInfo
    ) -> list[MilestoneIn]:
        """Checks that need the other milestones or the engagement's currency."""
        errors = commercial_term_errors(milestones, info.data.get("currency"))
        if errors:
            raise PydanticCustomError("milestones", "; ".join(errors))
        return milestones

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

    def as_changes(self) -> dict[str, Any]:
        return {
            "update": [u.as_change() for u in self.update],
            "add": [m.model_dump(mode="json", exclude_unset=True) for m in self.add],
            "remove": list(self.remove),
        }


class ChangeOrderIn(Strict):
    reason: Annotated[str, Field(strict=True, min_length=1, max_length=2000)]
    changes: ChangesIn

    @field_validator("reason")
    @classmethod
    def _stated(cls, reason: str) -> str:
        if not reason.strip():
            raise PydanticCustomError("reason", "a change order needs a reason")
        return reason
