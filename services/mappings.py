"""Payload mappings: JMESPath expressions that turn another system's JSON into a trigger.

Every expression is compiled when the source is registered, so a mapping that cannot run is a
422 there, not at the first delivery. Numbers stay exact: payloads are parsed with ``Decimal``
for floats, number literals in expressions become ``Decimal`` too (from their shortest
representation, exact up to 15 significant digits), and the JMESPath functions that handle
numbers (``to_number``, ``avg``, ``type``, ``to_string``, ``sum``, ``max`` …) work on them
without ever going through a binary float.

Each output is optional except ``milestone``; an optional output that evaluates to null is left
out, so the trigger's own default applies. New outputs (a period, a confirmation id) are one more
entry in ``TEXT_OUTPUTS`` and in the trigger body.
"""

import copy
import functools
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import jmespath
from jmespath import functions
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult
from jmespath.visitor import Options
from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from domain.bounds import MAX_DECIMAL_CHARS
from services.fields import KpiName, Strict

MAX_EXPRESSION_CHARS = 1000
MAX_KEY_CHARS = 255  # an Idempotency-Key
TEXT_OUTPUTS = ("external_ref", "note", "confirmation_id", "period")


class ExactFunctions(functions.Functions):
    """JMESPath's built-in functions, with ``Decimal`` a number like ``int``."""

    def _get_allowed_pytypes(self, types: Any) -> Any:
        allowed, subtypes = super()._get_allowed_pytypes(types)
        return _with_decimal(allowed), [_with_decimal(s) for s in subtypes]

    def _convert_to_jmespath_type(self, pyobject: str) -> str:
        return "number" if pyobject == "Decimal" else super()._convert_to_jmespath_type(pyobject)

    @functions.signature({"types": []})
    def _func_to_number(self, arg: Any) -> Any:
        if isinstance(arg, bool):
            return None
        if isinstance(arg, int | Decimal):
            return arg
        if isinstance(arg, str):
            try:
                number = Decimal(arg)
            except InvalidOperation:
                return None
            return number if number.is_finite() else None
        return None

    @functions.signature({"types": ["array-number"]})
    def _func_avg(self, arg: list[Any]) -> Any:
        return sum(arg, Decimal(0)) / len(arg) if arg else None

    @functions.signature({"types": []})
    def _func_type(self, arg: Any) -> str:
        return "number" if isinstance(arg, Decimal) else super()._func_type(arg)

    @functions.signature({"types": []})
    def _func_to_string(self, arg: Any) -> str:
        return format(arg, "f") if isinstance(arg, Decimal) else super()._func_to_string(arg)


def _with_decimal(types: Any) -> list[str]:
    return [*types, "Decimal"] if "float" in types else list(types)


OPTIONS = Options(custom_functions=ExactFunctions())


class InvalidExpression(ValueError):
    """An expression that does not compile, or calls a function that does not exist."""


@functools.lru_cache(maxsize=1024)
def compile_expression(text: str) -> ParsedResult:
    try:
        parsed = jmespath.compile(text)
        tree = copy.deepcopy(parsed.parsed)  # jmespath caches its trees: change only a copy
        _check_tree(tree)
    except JMESPathError as exc:
        first = str(exc).splitlines()[0]
        raise InvalidExpression(first.removesuffix(", for expression:").rstrip(":")) from None
    except RecursionError:
        raise InvalidExpression("the expression is nested too deeply") from None
    return ParsedResult(text, tree)


def _check_tree(node: dict[str, Any]) -> None:
    """Number literals to ``Decimal``; unknown functions and wrong argument counts refused."""
    if node["type"] == "literal":
        node["value"] = _exact(node["value"])
    if node["type"] == "function_expression":
        name, count = node["value"], len(node["children"])
        spec = ExactFunctions.FUNCTION_TABLE.get(name)
        if spec is None:
            raise InvalidExpression(f"unknown function {name}()")
        signature = spec["signature"]
        variadic = bool(signature) and signature[-1].get("variadic", False)
        if count < len(signature) or (count > len(signature) and not variadic):
            wanted = f"{len(signature)}{' or more' if variadic else ''}"
            plural = "" if wanted == "1" else "s"
            raise InvalidExpression(f"{name}() takes {wanted} argument{plural}, not {count}")
    for child in node.get("children", []):
        if isinstance(child, dict) and "type" in child:
            _check_tree(child)


def _exact(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, list):
        return [_exact(v) for v in value]
    if isinstance(value, dict):
        return {k: _exact(v) for k, v in value.items()}
    return value


def _checked(text: str) -> str:
    try:
        compile_expression(text)
    except InvalidExpression as exc:
        raise PydanticCustomError("jmespath", "{message}", {"message": str(exc)}) from None
    return text


Expression = Annotated[
    str, Field(strict=True, min_length=1, max_length=MAX_EXPRESSION_CHARS), AfterValidator(_checked)
]


class MappingIn(Strict):
    """Where each part of the trigger comes from in the payload (JMESPath expressions)."""

    milestone: Expression  # a milestone key; a fixed one is a raw literal: 'phase-1'
    completion_percent: Expression | None = None
    kpis: Annotated[dict[KpiName, Expression], Field(max_length=100)] = {}
    # An expression giving an object of metric -> value, merged under ``kpis``.
    kpi_object: Expression | None = None
    external_ref: Expression | None = None
    note: Expression | None = None
    confirmation_id: Expression | None = None  # a regulator's confirmation of a filing
    period: Expression | None = None  # the SLA period reported on (``2026-11``)
    idempotency_key: Expression | None = None  # default: the delivery's webhook-id
    when: Expression | None = None  # a falsy result: the payload is not a trigger


def fixed_milestone(mapping: MappingIn) -> str | None:
    """The milestone key a mapping always names (a literal), so it can be checked up front."""
    tree = compile_expression(mapping.milestone).parsed
    value = tree.get("value")
    return value if tree["type"] == "literal" and isinstance(value, str) else None


@dataclass(frozen=True)
class Mapped:
    milestone: str
    key: str | None  # the idempotency key; None: the webhook-id
    trigger: dict[str, Any]  # completion_percent, kpis, external_ref, note … (as present)


@dataclass(frozen=True)
class Ignored:
    reason: str


class MappingFailed(Exception):
    def __init__(self, field: str, expression: str, reason: str) -> None:
        self.field, self.expression, self.reason = field, expression, reason
        super().__init__(f"{field}: {expression!r} {reason}")


def apply(mapping: dict[str, Any], payload: Any) -> Mapped | Ignored:
    """The trigger this payload maps to, or why it is not one; ``MappingFailed`` otherwise."""
    spec = MappingIn.model_validate(mapping)
    if spec.when is not None:
        verdict = _search("when", spec.when, payload)
        if _falsy(verdict):
            return Ignored(f"when {spec.when!r} evaluated to {_describe(verdict)}")
    milestone = _search("milestone", spec.milestone, payload)
    if not isinstance(milestone, str) or not milestone:
        raise MappingFailed(
            "milestone", spec.milestone, f"evaluated to {_describe(milestone)}, not a milestone key"
        )
    trigger: dict[str, Any] = {"kpis": _kpis(spec, payload)}
    if spec.completion_percent is not None:
        percent = _search("completion_percent", spec.completion_percent, payload)
        if percent is not None:
            trigger["completion_percent"] = _decimal_text(
                "completion_percent", spec.completion_percent, percent
            )
    for name in TEXT_OUTPUTS:
        expression = getattr(spec, name)
        if expression is not None:
            value = _search(name, expression, payload)
            if value is not None:
                trigger[name] = _text(name, expression, value)
    key = None
    if spec.idempotency_key is not None:
        value = _search("idempotency_key", spec.idempotency_key, payload)
        key = _text("idempotency_key", spec.idempotency_key, value)
        if not key.strip() or len(key) > MAX_KEY_CHARS:
            raise MappingFailed(
                "idempotency_key",
                spec.idempotency_key,
                f"evaluated to {_describe(value)}; a key has 1 to {MAX_KEY_CHARS} characters",
            )
    return Mapped(milestone, key, trigger)


def _kpis(spec: MappingIn, payload: Any) -> dict[str, str]:
    kpis: dict[str, str] = {}
    if spec.kpi_object is not None:
        found = _search("kpi_object", spec.kpi_object, payload)
        if found is not None and not isinstance(found, dict):
            raise MappingFailed(
                "kpi_object", spec.kpi_object, f"evaluated to {_describe(found)}, not an object"
            )
        for metric, value in (found or {}).items():
            kpis[metric] = _decimal_text(f"kpi_object.{metric}", spec.kpi_object, value)
    for metric, expression in spec.kpis.items():
        field = f"kpis.{metric}"
        kpis[metric] = _decimal_text(field, expression, _search(field, expression, payload))
    return kpis


def _search(field: str, expression: str, payload: Any) -> Any:
    try:
        return compile_expression(expression).search(payload, options=OPTIONS)
    except JMESPathError as exc:
        raise MappingFailed(field, expression, f"failed: {exc}") from None
    except RecursionError:
        raise MappingFailed(field, expression, "failed: nested too deeply") from None


def _decimal_text(field: str, expression: str, value: Any) -> str:
    """A number or decimal string as exact decimal text, never with an exponent."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise MappingFailed(
            field, expression, f"evaluated to {_describe(value)}, not a number or decimal string"
        )
    try:
        number = Decimal(value)
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite():
        raise MappingFailed(field, expression, f"evaluated to {value!r}, not a decimal number")
    text = value if isinstance(value, str) else _number_text(number)
    if len(text) > MAX_DECIMAL_CHARS:
        raise MappingFailed(
            field,
            expression,
            f"evaluated to {_describe(value)}: over {MAX_DECIMAL_CHARS} characters",
        )
    return text


def _number_text(number: Decimal) -> str:
    """Plain decimal text; a huge exponent stays in scientific form (and is refused as too long)."""
    return format(number, "f") if abs(number.adjusted()) <= MAX_DECIMAL_CHARS else str(number)


def _text(field: str, expression: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return _decimal_text(field, expression, value)
    raise MappingFailed(field, expression, f"evaluated to {_describe(value)}, not text")


def _falsy(value: Any) -> bool:
    """JMESPath's falsehood: false, null, and an empty string, array or object."""
    return value is None or value is False or value in ("", [], {})


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an empty array" if not value else "an array"
    if isinstance(value, str):
        text = repr(value)
    else:
        text = _number_text(value) if isinstance(value, Decimal) else str(value)
    return text if len(text) <= 80 else f"{text[:77]}..."
