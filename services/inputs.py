"""Validated engagements and their milestones, as the services take them. Unknown fields are
refused; every amount, text, list and KPI payload is bounded (``domain.bounds``), so nothing
accepted can fail later.

The API takes them as request bodies (``api/schemas.py`` re-exports them), and activities
re-validate stored milestones with them, so one model holds each rule."""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from domain.bounds import MAX_DECIMAL_CHARS
from domain.calendar import parse_span
from domain.criteria import OPERATORS, Criterion, validate_criterion
from domain.dependencies import find_cycle, unknown_dependencies
from domain.periods import MAX_REPORT_GRACE_DAYS, PeriodKind
from domain.success_fee import InvalidSuccessFee, parse_success_fee_terms
from services.approval_inputs import ApprovalIn
from services.confirmation_inputs import ConfirmationIn
from services.fields import (
    Currency,
    Id,
    KpiName,
    KpiValue,
    MinorAmount,
    Name,
    Percent,
    Span,
    Strict,
    Text,
    checked_by,
)
from services.time_inputs import TimeAndMaterialsIn


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

    window: Annotated[dict[str, Any], checked_by(parse_span, "duration")]
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
    kind: Literal["standard", "bonus", "success_fee", "sla"] = "standard"
    # An SLA milestone bills fee_minor once per period its criteria hold for.
    period: PeriodKind | None = None
    # A missed SLA period is credited service_credit_minor; late reports count for a grace.
    service_credit_minor: MinorAmount | None = None
    report_grace_days: Annotated[StrictInt, Field(ge=0, le=MAX_REPORT_GRACE_DAYS)] | None = None
    # Billed once per accepted filing (each distinct confirmation id), unit_fee_minor each.
    repeatable: StrictBool = False
    unit_fee_minor: MinorAmount | None = None
    fee_minor: Annotated[MinorAmount | None, Field(validate_default=True)] = None
    fee_percent_of: Annotated[FeePercentOfIn | None, Field(validate_default=True)] = None
    trigger: Literal["manual", "automatic", "both"] = "manual"
    depends_on: Annotated[list[DependencyIn], Field(max_length=100)] = []
    deadline: AwareDatetime | None = None
    clawback: ClawbackIn | None = None
    success_fee: Annotated[dict[str, Any] | None, Field(validate_default=True)] = None
    allow_partial: StrictBool = False
    acceptance_criteria: Annotated[list[CriterionIn], Field(max_length=100)] = []
    confirmation: ConfirmationIn | None = None

    @field_validator("fee_minor")
    @classmethod
    def _fee(cls, fee: int | None, info: ValidationInfo) -> int | None:
        kind = _kind_of(info)
        if info.data.get("repeatable"):
            if fee is not None:
                raise PydanticCustomError(
                    "fee", "a repeatable milestone bills unit_fee_minor per filing: omit fee_minor"
                )
            return fee
        if kind in ("standard", "sla") and fee is None:
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
        if deadline is not None and _kind_of(info) in ("standard", "sla"):
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
        if allow_partial and _kind_of(info) == "sla":
            raise PydanticCustomError("partial", "an SLA period is billed whole, never partially")
        if allow_partial and info.data.get("clawback") is not None:
            raise PydanticCustomError(
                "partial", "a bonus under clawback is billed whole, never partially"
            )
        return allow_partial

    @model_validator(mode="after")
    def _per_filing(self) -> "MilestoneIn":
        """A repeatable milestone is a standard fee billed whole once per confirmed filing."""
        if not self.repeatable:
            if self.unit_fee_minor is not None:
                raise PydanticCustomError(
                    "fee", "unit_fee_minor is the per-filing fee of a repeatable milestone"
                )
            return self
        problem = _per_filing_problem(self)
        if problem:
            raise PydanticCustomError("repeatable", problem)
        return self

    @model_validator(mode="after")
    def _per_period(self) -> "MilestoneIn":
        """An SLA milestone names its period and checks each period's report by machine."""
        if self.kind != "sla":
            if self.period is not None:
                raise PydanticCustomError("period", "only an SLA milestone has a period")
            if self.service_credit_minor is not None or self.report_grace_days is not None:
                raise PydanticCustomError(
                    "period",
                    "only an SLA milestone has a service_credit_minor or report_grace_days",
                )
            return self
        if self.period is None:
            raise PydanticCustomError(
                "period", "an SLA milestone needs its period: monthly, weekly or quarterly"
            )
        if self.repeatable:
            raise PydanticCustomError(
                "repeatable", "an SLA milestone bills once per period; it is not repeatable"
            )
        if not any(c.metric for c in self.acceptance_criteria):
            raise PydanticCustomError(
                "acceptance_criteria",
                "an SLA milestone needs at least one machine-checkable criterion "
                "(such as uptime_pct >= 99.9)",
            )
        return self

    @property
    def stored_fee_minor(self) -> int:
        """The fee column: the fee, the per-filing fee of a repeatable milestone, or 0 until a
        success fee or percent-of bonus is computed."""
        if self.repeatable:
            return self.unit_fee_minor or 0
        return self.fee_minor if self.fee_minor is not None else 0

    @model_validator(mode="after")
    def _automatic_needs_a_check(self) -> "MilestoneIn":
        if self.trigger == "automatic" and not any(c.metric for c in self.acceptance_criteria):
            raise PydanticCustomError(
                "trigger", "an automatic milestone needs at least one machine-checkable criterion"
            )
        return self


def _per_filing_problem(m: MilestoneIn) -> str | None:
    if m.kind != "standard":
        return "only a standard milestone is repeatable"
    if m.unit_fee_minor is None:
        return "a repeatable milestone needs unit_fee_minor, its fee per filing"
    if m.allow_partial:
        return "each filing is billed whole: a repeatable milestone cannot allow_partial"
    if m.confirmation is None or not m.confirmation.required:
        return (
            "a repeatable milestone bills once per regulator confirmation: "
            'set confirmation {"required": true}'
        )
    return None


def commercial_term_errors(milestones: list[MilestoneIn], currency: str | None) -> list[str]:
    """A bonus's fee basis must be a standard, one-off milestone among them; no KPI gate on a
    repeatable milestone; success-fee terms must hold in the engagement's currency (skipped when
    the currency itself is invalid)."""
    kinds = {m.key: m.kind for m in milestones}
    repeatable = {m.key for m in milestones if m.repeatable or m.kind == "sla"}
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
            elif basis in repeatable:
                errors.append(
                    f"milestones.{i}.fee_percent_of: {basis!r} is repeatable; a bonus is a "
                    "percent of a one-off fee"
                )
        for j, dep in enumerate(m.depends_on):
            if dep.kpi is not None and dep.milestone in repeatable:
                errors.append(
                    f"milestones.{i}.depends_on.{j}.kpi: {dep.milestone!r} bills per filing or "
                    "period, so it has no one accepted KPI to gate on; depend on it without kpi"
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
    time_and_materials: TimeAndMaterialsIn | None = None

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
