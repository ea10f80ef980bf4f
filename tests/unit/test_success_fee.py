import json
from decimal import Decimal

import pytest

from domain.money import UnknownCurrency
from domain.success_fee import (
    InvalidSuccessFee,
    SuccessFee,
    SuccessFeeTerms,
    parse_success_fee_terms,
    success_fee,
)

REVENUE = {"percent": "15", "metric": "monthly_revenue", "baseline": "120000.00"}


def terms(**overrides: object) -> SuccessFeeTerms:
    return parse_success_fee_terms({**REVENUE, **overrides}, "USD")


# --- success_fee ---


def test_fifteen_percent_of_a_30_000_dollar_improvement_is_4_500_dollars() -> None:
    fee = success_fee(terms(), "150000.00", "USD")
    assert fee == SuccessFee(
        amount_minor=450_000,
        raw_minor=450_000,
        metric="monthly_revenue",
        measured="150000.00",
        baseline="120000.00",
        percent="15",
        floor_minor=None,
        cap_minor=None,
        clamped=None,
    )


def test_a_success_fee_above_the_cap_bills_the_cap() -> None:
    fee = success_fee(terms(cap_minor=300_000), "150000.00", "USD")
    assert (fee.amount_minor, fee.raw_minor, fee.clamped) == (300_000, 450_000, "cap")


def test_a_success_fee_exactly_at_the_cap_is_not_clamped() -> None:
    fee = success_fee(terms(cap_minor=450_000), "150000.00", "USD")
    assert (fee.amount_minor, fee.clamped) == (450_000, None)


def test_a_success_fee_below_the_floor_bills_the_floor() -> None:
    fee = success_fee(terms(floor_minor=500_000), "150000.00", "USD")
    assert (fee.amount_minor, fee.raw_minor, fee.clamped) == (500_000, 450_000, "floor")


def test_a_success_fee_below_baseline_bills_the_floor() -> None:
    fee = success_fee(terms(floor_minor=50_000), "100000.00", "USD")
    assert (fee.amount_minor, fee.raw_minor, fee.clamped) == (50_000, -300_000, "floor")


def test_below_baseline_without_a_floor_bills_zero_never_a_negative_fee() -> None:
    fee = success_fee(terms(cap_minor=100_000), "100000.00", "USD")
    assert (fee.amount_minor, fee.raw_minor, fee.clamped) == (0, -300_000, "zero")


def test_exactly_at_baseline_bills_zero_without_a_clamp() -> None:
    fee = success_fee(terms(), "120000.00", "USD")
    assert (fee.amount_minor, fee.raw_minor, fee.clamped) == (0, 0, None)


def test_a_zero_floor_turns_a_negative_fee_into_a_floor_clamp() -> None:
    fee = success_fee(terms(floor_minor=0), "100000.00", "USD")
    assert (fee.amount_minor, fee.clamped) == (0, "floor")


def test_yen_have_no_minor_units() -> None:
    yen = parse_success_fee_terms({**REVENUE, "baseline": "1200000"}, "JPY")
    assert success_fee(yen, "1500000", "JPY").amount_minor == 45_000


def test_half_a_yen_rounds_up() -> None:
    yen = parse_success_fee_terms({**REVENUE, "percent": "2.5", "baseline": "1000"}, "JPY")
    # 2.5% of 20 yen is 0.5 yen.
    assert success_fee(yen, "1020", "JPY").raw_minor == 1


def test_half_a_cent_rounds_up() -> None:
    half = terms(percent="50", baseline="100.00")
    # 50% of one cent is half a cent.
    assert success_fee(half, "100.01", "USD").amount_minor == 1
    # Just under half a cent rounds down.
    assert success_fee(terms(percent="49.99", baseline="100.00"), "100.01", "USD").amount_minor == 0


def test_a_negative_half_cent_rounds_away_from_zero_before_the_zero_clamp() -> None:
    fee = success_fee(terms(percent="50", baseline="100.01"), "100.00", "USD")
    assert (fee.amount_minor, fee.raw_minor, fee.clamped) == (0, -1, "zero")


def test_a_measured_value_may_be_more_precise_than_the_currency_and_rounds_once() -> None:
    fee = success_fee(terms(percent="100", baseline="100.00"), "100.005", "USD")
    assert fee.amount_minor == 1


def test_the_fee_is_exact_for_large_amounts() -> None:
    big = terms(percent="33.33", baseline="0.00")
    # 33.33% of 10**15 - 1 cents: 333,299,999,999,999.6667 -> 333,300,000,000,000.
    fee = success_fee(big, "9999999999999.99", "USD")
    assert fee.amount_minor == 333_300_000_000_000


@pytest.mark.parametrize("measured", [150000.0, 150000, True, None, "1e5", "150,000.00", " 1", ""])
def test_measured_values_must_be_decimal_strings(measured: object) -> None:
    with pytest.raises(InvalidSuccessFee, match="measured monthly_revenue"):
        success_fee(terms(), measured, "USD")  # type: ignore[arg-type]


def test_an_absurdly_precise_measured_value_is_refused_not_rounded_twice() -> None:
    with pytest.raises(InvalidSuccessFee, match="too many digits"):
        success_fee(terms(), "1." + "1" * 60, "USD")


def test_terms_built_for_one_currency_are_checked_against_the_currency_billed() -> None:
    with pytest.raises(InvalidSuccessFee, match="baseline"):
        success_fee(terms(), "150000.00", "JPY")


def test_terms_built_by_hand_are_validated_too() -> None:
    with pytest.raises(InvalidSuccessFee, match="floor_minor"):
        success_fee(SuccessFeeTerms("15", "m", "0.00", cap_minor=1, floor_minor=2), "1", "USD")
    with pytest.raises(InvalidSuccessFee, match="percent"):
        success_fee(SuccessFeeTerms("150", "m", "0.00"), "1", "USD")


def test_an_unknown_currency_is_refused() -> None:
    with pytest.raises(UnknownCurrency):
        success_fee(terms(), "150000.00", "usd")


# --- explain and as_dict ---


def test_the_explanation_shows_the_formula_and_the_result() -> None:
    fee = success_fee(terms(), "150000.00", "USD")
    expected = "15% \N{MULTIPLICATION SIGN} (150000.00 \N{MINUS SIGN} 120000.00 monthly_revenue)"
    assert fee.explain("USD") == f"{expected} = 4,500.00 USD"


def test_the_explanation_mentions_the_cap() -> None:
    fee = success_fee(terms(cap_minor=300_000), "150000.00", "USD")
    assert fee.explain("USD").endswith("= 4,500.00 USD, capped at 3,000.00 USD")


def test_the_explanation_mentions_the_floor() -> None:
    fee = success_fee(terms(floor_minor=50_000), "100000.00", "USD")
    assert fee.explain("USD").endswith("= -3,000.00 USD, raised to the floor of 500.00 USD")


def test_the_explanation_says_why_a_negative_fee_became_zero() -> None:
    fee = success_fee(terms(), "100000.00", "USD")
    assert "= -3,000.00 USD, so 0.00 USD" in fee.explain("USD")
    assert "never negative" in fee.explain("USD")


def test_as_dict_round_trips_through_json_with_every_field() -> None:
    fee = success_fee(terms(cap_minor=300_000), "150000.00", "USD")
    data = fee.as_dict()
    assert json.loads(json.dumps(data)) == data
    assert SuccessFee(**data) == fee  # type: ignore[arg-type]


def test_a_success_fee_cannot_be_negative_or_claim_an_unknown_clamp() -> None:
    with pytest.raises(ValueError, match="never negative"):
        SuccessFee(-1, -1, "m", "0", "1", "100", None, None, None)
    with pytest.raises(ValueError, match="clamped"):
        SuccessFee(1, 1, "m", "1", "0", "1", None, None, "ceiling")


# --- parse_success_fee_terms ---


def test_terms_parse_with_every_field() -> None:
    raw = {**REVENUE, "cap_minor": 1_000_000, "floor_minor": 0}
    assert parse_success_fee_terms(raw, "USD") == SuccessFeeTerms(
        percent="15",
        metric="monthly_revenue",
        baseline="120000.00",
        cap_minor=1_000_000,
        floor_minor=0,
    )


def test_optional_bounds_may_be_null() -> None:
    parsed = terms(cap_minor=None, floor_minor=None)
    assert (parsed.cap_minor, parsed.floor_minor) == (None, None)


def test_a_floor_equal_to_the_cap_is_allowed() -> None:
    assert terms(cap_minor=5, floor_minor=5).floor_minor == 5


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"percent": 15}, "percent"),
        ({"percent": 15.0}, "percent"),
        ({"percent": "100.5"}, "percent"),
        ({"percent": "-1"}, "percent"),
        ({"percent": "1e1"}, "percent"),
        ({"metric": ""}, "metric"),
        ({"metric": "   "}, "metric"),
        ({"metric": 7}, "metric"),
        ({"metric": "m" * 101}, "metric"),
        ({"baseline": 120000.0}, "baseline"),
        ({"baseline": 120000}, "baseline"),
        ({"baseline": True}, "baseline"),
        ({"baseline": "120000.001"}, "baseline"),
        ({"baseline": "120,000"}, "baseline"),
        ({"cap_minor": -1}, "cap_minor"),
        ({"cap_minor": True}, "cap_minor"),
        ({"cap_minor": 10.0}, "cap_minor"),
        ({"cap_minor": "100"}, "cap_minor"),
        ({"floor_minor": -1}, "floor_minor"),
        ({"floor_minor": False}, "floor_minor"),
        ({"floor_minor": Decimal("1")}, "floor_minor"),
        ({"floor_minor": 11, "cap_minor": 10}, "floor_minor 11 must not be above cap_minor 10"),
        ({"cap": 10}, "unknown success-fee field"),
    ],
)
def test_invalid_terms_are_refused_naming_the_field(overrides: dict, field: str) -> None:
    with pytest.raises(InvalidSuccessFee, match=field):
        parse_success_fee_terms({**REVENUE, **overrides}, "USD")


@pytest.mark.parametrize("missing", ["percent", "metric", "baseline"])
def test_missing_required_terms_are_named(missing: str) -> None:
    raw = {key: value for key, value in REVENUE.items() if key != missing}
    with pytest.raises(InvalidSuccessFee, match=f"need {missing}"):
        parse_success_fee_terms(raw, "USD")


def test_a_metric_of_exactly_a_hundred_characters_is_allowed() -> None:
    assert terms(metric="m" * 100).metric == "m" * 100


def test_baselines_with_more_decimals_than_the_currency_are_refused() -> None:
    with pytest.raises(InvalidSuccessFee, match="baseline: JPY has 0 decimal places"):
        parse_success_fee_terms({**REVENUE, "baseline": "1200000.0"}, "JPY")


def test_terms_must_be_a_mapping() -> None:
    with pytest.raises(InvalidSuccessFee, match="mapping"):
        parse_success_fee_terms(["15"], "USD")  # type: ignore[arg-type]
