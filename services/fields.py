"""The field types every validated input shares: strict models that refuse unknown fields and NUL
characters, bounded text and ids, decimal-string percents, money as a strict bounded int, and KPI
payloads as decimal strings (never a float). Each rule is checked by the domain function that
owns it."""

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    field_validator,
)
from pydantic_core import PydanticCustomError

from domain.bounds import MAX_AMOUNT_MINOR, MAX_DECIMAL_CHARS, MAX_KPI_NAME_CHARS, MAX_KPIS
from domain.calendar import parse_span
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


def checked_by(rule: Callable[[Any], object], kind: str) -> AfterValidator:
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


Percent = Annotated[str, Field(strict=True, max_length=16), checked_by(parse_percent, "percent")]
Currency = Annotated[str, Field(strict=True), checked_by(currency_exponent, "currency")]
Span = Annotated[dict[str, Any] | None, checked_by(parse_span, "duration")]
MinorAmount = Annotated[StrictInt, Field(ge=0, le=MAX_AMOUNT_MINOR)]
Name = Annotated[str, Field(strict=True, min_length=1, max_length=200)]
Id = Annotated[str, Field(strict=True, min_length=1, max_length=120)]
RoleName = Annotated[str, Field(strict=True, min_length=1, max_length=100)]
KpiValue = Annotated[str, BeforeValidator(_kpi_value)]
KpiName = Annotated[str, Field(strict=True, min_length=1, max_length=MAX_KPI_NAME_CHARS)]
Kpis = Annotated[dict[KpiName, KpiValue], Field(max_length=MAX_KPIS)]
Text = Annotated[str, Field(strict=True, max_length=2000)]
Ids = Annotated[list[Id], Field(max_length=100)]
