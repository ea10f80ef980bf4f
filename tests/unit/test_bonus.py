import pytest

from domain.bonus import ReportCheck, bonus_fee_minor, check_report
from domain.money import InvalidAmount, InvalidPercent


def test_a_bonus_of_five_percent_of_a_fee_is_that_share_of_it() -> None:
    assert bonus_fee_minor(4_000_000, "5") == 200_000


def test_a_fractional_bonus_rounds_half_up_once() -> None:
    assert bonus_fee_minor(333, "12.5") == 42  # 41.625
    assert bonus_fee_minor(5, "10") == 1  # 0.5


def test_a_bonus_of_the_whole_fee_is_the_fee() -> None:
    assert bonus_fee_minor(3_000_000, "100") == 3_000_000


@pytest.mark.parametrize("percent", ["0", "0.0", "101", "-5", "5%", ""])
def test_a_bonus_percent_must_be_above_zero_and_at_most_a_hundred(percent: str) -> None:
    with pytest.raises(InvalidPercent):
        bonus_fee_minor(1_000, percent)


@pytest.mark.parametrize("fee", ["100", 1.5, True])
def test_the_basis_fee_must_be_minor_units(fee: object) -> None:
    with pytest.raises(InvalidAmount):
        bonus_fee_minor(fee, "5")  # type: ignore[arg-type]


def test_a_report_within_the_kpi_is_ok() -> None:
    assert check_report("error_rate_pct", "<=", "0.5", {"error_rate_pct": "0.5"}) == ReportCheck(
        "ok", "error_rate_pct 0.5 keeps error_rate_pct <= 0.5"
    )


def test_a_report_outside_the_kpi_is_a_breach() -> None:
    assert check_report("error_rate_pct", "<=", "0.5", {"error_rate_pct": "0.9"}) == ReportCheck(
        "breach", "error_rate_pct 0.9 breaks error_rate_pct <= 0.5"
    )


def test_a_report_without_the_metric_is_ignored_never_a_breach() -> None:
    check = check_report("error_rate_pct", "<=", "0.5", {"p95_latency_ms": "900"})
    assert check == ReportCheck("ignored", "no value reported for error_rate_pct")


@pytest.mark.parametrize("value", ["1e5", "NaN", "n/a", ""])
def test_a_value_that_is_not_a_plain_decimal_is_ignored(value: str) -> None:
    assert check_report("uptime", ">=", "99.9", {"uptime": value}).outcome == "ignored"
