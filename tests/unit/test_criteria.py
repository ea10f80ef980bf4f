import pytest

from domain.criteria import (
    OPERATORS,
    Criterion,
    CriterionResult,
    check_kpi,
    compare,
    evaluate,
    failed,
    validate_criterion,
)

LATENCY = Criterion(
    id="latency", description="p95 under 300ms", metric="p95_latency_ms", op="<=", threshold="300"
)
UPTIME = Criterion(id="uptime", metric="uptime_pct", op=">=", threshold="99.9")
DEMO = Criterion(id="demo", description="Customer saw a live demo")


@pytest.mark.parametrize(
    ("value", "op", "threshold", "expected"),
    [
        ("212", "<=", "300", True),
        ("300", "<=", "300", True),
        ("300.01", "<=", "300", False),
        ("299.99", "<", "300", True),
        ("300", "<", "300", False),
        ("301", ">", "300", True),
        ("300", ">", "300", False),
        ("300", ">=", "300", True),
        ("299", ">=", "300", False),
        ("10.0", "==", "10", True),
        ("10.5", "==", "10", False),
        ("10", "!=", "10.00", False),
        ("11", "!=", "10", True),
        ("-1", "<", "0", True),
        (".5", "==", "0.5", True),
    ],
)
def test_compare_applies_each_operator_to_the_decimal_values(
    value: str, op: str, threshold: str, expected: bool
) -> None:
    assert compare(value, op, threshold) is expected


def test_every_listed_operator_is_supported() -> None:
    assert all(isinstance(compare("1", op, "1"), bool) for op in OPERATORS)


@pytest.mark.parametrize("op", ["=<", "=", "<>", "lt", ""])
def test_compare_rejects_an_unknown_operator(op: str) -> None:
    with pytest.raises(ValueError, match="unknown operator"):
        compare("1", op, "2")


@pytest.mark.parametrize("value", ["abc", "", "NaN", "Infinity", "1e3", " 1", "1,000", 5])
def test_compare_rejects_a_value_that_is_not_a_finite_decimal_string(value: object) -> None:
    with pytest.raises(ValueError, match="value must be a decimal string"):
        compare(value, "<", "2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="threshold must be a decimal string"):
        compare("1", "<", value)  # type: ignore[arg-type]


def test_a_kpi_within_its_threshold_passes_with_a_readable_detail() -> None:
    result = check_kpi("p95_latency_ms", "<=", "300", {"p95_latency_ms": "212"}, criterion_id="c1")
    assert result == CriterionResult(id="c1", passed=True, detail="212 <= 300")


def test_a_kpi_outside_its_threshold_fails() -> None:
    result = check_kpi("p95_latency_ms", "<=", "300", {"p95_latency_ms": "412"})
    assert result == CriterionResult(id="", passed=False, detail="412 <= 300")


def test_a_kpi_nobody_reported_fails() -> None:
    result = check_kpi("p95_latency_ms", "<=", "300", {"uptime_pct": "99.99"})
    assert result.passed is False
    assert result.detail == "no value reported for p95_latency_ms"


def test_a_non_numeric_kpi_fails_and_says_what_was_reported() -> None:
    result = check_kpi("p95_latency_ms", "<=", "300", {"p95_latency_ms": "fast"})
    assert result.passed is False
    assert "'fast'" in result.detail
    assert "not a number" in result.detail


def test_check_kpi_treats_a_bad_threshold_or_operator_as_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="threshold"):
        check_kpi("m", "<=", "three hundred", {"m": "1"})
    with pytest.raises(ValueError, match="unknown operator"):
        check_kpi("m", "=>", "300", {"m": "1"})


def test_evaluate_returns_one_result_per_criterion_in_order() -> None:
    kpis = {"p95_latency_ms": "212", "uptime_pct": "99.5"}
    assert evaluate([LATENCY, UPTIME, DEMO], kpis, require_metrics=True) == [
        CriterionResult("latency", True, "212 <= 300"),
        CriterionResult("uptime", False, "99.5 >= 99.9"),
        CriterionResult("demo", None, "needs human sign-off"),
    ]


def test_a_missing_metric_fails_when_metrics_are_required() -> None:
    [result] = evaluate([LATENCY], {}, require_metrics=True)
    assert result == CriterionResult("latency", False, "no value reported for p95_latency_ms")


def test_a_missing_metric_is_left_to_approvers_when_metrics_are_optional() -> None:
    [result] = evaluate([LATENCY], {}, require_metrics=False)
    assert result == CriterionResult("latency", None, "not reported; approvers decide")


def test_a_reported_non_numeric_metric_fails_even_when_metrics_are_optional() -> None:
    [result] = evaluate([LATENCY], {"p95_latency_ms": "n/a"}, require_metrics=False)
    assert result.passed is False


def test_a_malformed_criterion_fails_instead_of_raising_inside_evaluate() -> None:
    broken = Criterion(id="broken", metric="p95_latency_ms", op="<=")
    [result] = evaluate([broken], {"p95_latency_ms": "1"}, require_metrics=False)
    assert result.passed is False
    assert result.detail.startswith("invalid criterion:")


def test_failed_keeps_only_definite_failures() -> None:
    results = [
        CriterionResult("a", True, ""),
        CriterionResult("b", False, ""),
        CriterionResult("c", None, ""),
        CriterionResult("d", False, ""),
    ]
    assert [r.id for r in failed(results)] == ["b", "d"]


def test_a_criterion_is_machine_checkable_only_with_metric_op_and_threshold() -> None:
    assert LATENCY.machine_checkable
    assert not DEMO.machine_checkable
    assert not Criterion(id="x", metric="m", op="<").machine_checkable


@pytest.mark.parametrize(
    ("criterion", "kpis", "passed"),
    [
        (LATENCY, {"p95_latency_ms": "212"}, True),
        (UPTIME, {"uptime_pct": "99.5"}, False),
        (DEMO, {}, None),
        (Criterion(id="bare"), {}, None),
    ],
)
def test_validate_criterion_accepts_complete_or_description_only_criteria(
    criterion: Criterion, kpis: dict[str, str], passed: bool | None
) -> None:
    """Accepted criteria are usable: complete ones are checked against the KPIs, description-
    only ones are left to the approvers (passed is None)."""
    assert validate_criterion(criterion) is None
    assert criterion.machine_checkable is (passed is not None)
    [result] = evaluate([criterion], kpis, require_metrics=False)
    assert (result.id, result.passed) == (criterion.id, passed)


@pytest.mark.parametrize(
    ("criterion", "message"),
    [
        (Criterion(id="x", metric="m"), "missing op, threshold"),
        (Criterion(id="x", metric="m", op="<"), "missing threshold"),
        (Criterion(id="x", op="<", threshold="1"), "missing metric"),
        (Criterion(id="x", metric="m", op="=<", threshold="1"), "unknown operator"),
        (Criterion(id="x", metric="m", op="<", threshold="three"), "decimal string"),
        (Criterion(id="x", metric="m", op="<", threshold="1e3"), "decimal string"),
        (Criterion(id="x", metric="m", op="<", threshold="NaN"), "decimal string"),
        (Criterion(id="x", metric="", op="<", threshold="1"), "metric name"),
    ],
)
def test_validate_criterion_rejects_partial_or_malformed_criteria(
    criterion: Criterion, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        validate_criterion(criterion)
