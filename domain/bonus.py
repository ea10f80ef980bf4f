"""Bonus milestones: a fee set as a percent of another milestone's, and what a KPI report
means for a clawback.

Stdlib only: this module is imported inside the Temporal workflow sandbox.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from domain.criteria import compare
from domain.money import InvalidPercent, parse_percent, percent_of

REPORT_OUTCOMES = ("ok", "breach", "ignored")


def bonus_fee_minor(basis_fee_minor: int, percent: str) -> int:
    """A bonus of `percent` % of another milestone's fee, rounded half up once."""
    value = parse_percent(percent)
    if value == 0:
        raise InvalidPercent("a bonus percent must be more than zero")
    return percent_of(basis_fee_minor, value)


@dataclass(frozen=True)
class ReportCheck:
    """What one KPI report says about a clawback KPI: ``ok``, ``breach`` or ``ignored``."""

    outcome: str
    detail: str


def check_report(metric: str, op: str, threshold: str, kpis: Mapping[str, str]) -> ReportCheck:
    """Check a report's value of `metric` against the KPI the bonus must keep.

    A report that does not carry the metric, or carries something that is not a plain decimal,
    says nothing about it: ignored, never a breach, so a clawback needs a real measurement.
    """
    rule = f"{metric} {op} {threshold}"
    if metric not in kpis:
        return ReportCheck("ignored", f"no value reported for {metric}")
    value = kpis[metric]
    try:
        kept = compare(value, op, threshold)
    except ValueError:
        return ReportCheck("ignored", f"{metric} reported {value!r}, which is not a number")
    if kept:
        return ReportCheck("ok", f"{metric} {value} keeps {rule}")
    return ReportCheck("breach", f"{metric} {value} breaks {rule}")
