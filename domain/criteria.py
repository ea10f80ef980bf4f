"""Acceptance criteria: which can be checked against reported KPIs, and how.

Stdlib only: this module is imported inside the Temporal workflow sandbox.
"""

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeGuard

OPERATORS = ("<", "<=", ">", ">=", "==", "!=")

_COMPARATORS: dict[str, Callable[[Decimal, Decimal], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
# Plain decimals only (ASCII digits, optional sign, no exponent, no spaces), the same
# strictness as money percentages: "212", "-3", "0.25", ".5", "99.".
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")

HUMAN_SIGN_OFF = "needs human sign-off"
NOT_REPORTED = "not reported; approvers decide"


@dataclass(frozen=True)
class Criterion:
    """An acceptance criterion; machine-checkable when metric, op and threshold are set."""

    id: str
    description: str = ""
    metric: str | None = None
    op: str | None = None
    threshold: str | None = None

    @property
    def machine_checkable(self) -> bool:
        return self.metric is not None and self.op is not None and self.threshold is not None


@dataclass(frozen=True)
class CriterionResult:
    """Outcome for one criterion. `passed` is None when a human has to decide."""

    id: str
    passed: bool | None
    detail: str


def compare(value: str, op: str, threshold: str) -> bool:
    """Compare two decimal strings numerically ("10.0" == "10")."""
    if op not in _COMPARATORS:
        raise ValueError(f"unknown operator {op!r}; expected one of {', '.join(OPERATORS)}")
    return _COMPARATORS[op](_to_decimal(value, "value"), _to_decimal(threshold, "threshold"))


def check_kpi(
    metric: str,
    op: str,
    threshold: str,
    kpis: Mapping[str, str],
    *,
    criterion_id: str = "",
) -> CriterionResult:
    """Check one KPI against a threshold.

    A missing or non-numeric reported value fails the check; a bad operator or
    threshold is a configuration error and raises ValueError.
    """
    if op not in _COMPARATORS:
        raise ValueError(f"unknown operator {op!r}; expected one of {', '.join(OPERATORS)}")
    _to_decimal(threshold, "threshold")
    if metric not in kpis:
        return CriterionResult(criterion_id, False, f"no value reported for {metric}")
    value = kpis[metric]
    if not _is_decimal(value):
        return CriterionResult(
            criterion_id, False, f"{metric} reported {value!r}, which is not a number"
        )
    return CriterionResult(criterion_id, compare(value, op, threshold), f"{value} {op} {threshold}")


def evaluate(
    criteria: Sequence[Criterion],
    kpis: Mapping[str, str],
    *,
    require_metrics: bool,
) -> list[CriterionResult]:
    """Evaluate every criterion, in order.

    Description-only criteria are left to humans (passed None). A machine-checkable
    criterion whose metric was not reported fails when `require_metrics`, otherwise it
    is left to the approvers. A malformed criterion fails (passed False) instead of
    raising: this runs inside workflows, where an exception would retry forever, and a
    criterion nobody can check must not count as met.
    """
    results: list[CriterionResult] = []
    for criterion in criteria:
        try:
            validate_criterion(criterion)
        except ValueError as exc:
            results.append(CriterionResult(criterion.id, False, f"invalid criterion: {exc}"))
            continue
        metric, op, threshold = criterion.metric, criterion.op, criterion.threshold
        if metric is None or op is None or threshold is None:
            results.append(CriterionResult(criterion.id, None, HUMAN_SIGN_OFF))
        elif metric not in kpis and not require_metrics:
            results.append(CriterionResult(criterion.id, None, NOT_REPORTED))
        else:
            results.append(check_kpi(metric, op, threshold, kpis, criterion_id=criterion.id))
    return results


def failed(results: Sequence[CriterionResult]) -> list[CriterionResult]:
    """The results that definitely failed (passed is False, not None)."""
    return [result for result in results if result.passed is False]


def validate_criterion(c: Criterion) -> None:
    """Raise ValueError unless `c` is description-only or fully and validly specified."""
    parts = {"metric": c.metric, "op": c.op, "threshold": c.threshold}
    missing = [name for name, value in parts.items() if value is None]
    if len(missing) == len(parts):
        return
    if missing:
        raise ValueError(
            f"criterion {c.id!r} sets only some of metric, op and threshold; "
            f"missing {', '.join(missing)}"
        )
    if not isinstance(c.metric, str) or not c.metric:
        raise ValueError(f"criterion {c.id!r} needs a non-empty metric name")
    if c.op not in _COMPARATORS:
        raise ValueError(
            f"criterion {c.id!r} has unknown operator {c.op!r}; "
            f"expected one of {', '.join(OPERATORS)}"
        )
    if not _is_decimal(c.threshold):
        raise ValueError(
            f"criterion {c.id!r} threshold must be a decimal string like '300', got {c.threshold!r}"
        )


def _is_decimal(text: object) -> TypeGuard[str]:
    return isinstance(text, str) and _DECIMAL.fullmatch(text) is not None


def _to_decimal(text: object, name: str) -> Decimal:
    if not _is_decimal(text):
        raise ValueError(f"{name} must be a decimal string like '212.5', got {text!r}")
    return Decimal(text)
