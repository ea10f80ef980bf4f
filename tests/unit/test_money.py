from decimal import Decimal

import pytest

from domain.money import (
    InvalidAmount,
    InvalidPercent,
    UnknownCurrency,
    allocate,
    currency_exponent,
    format_minor,
    parse_major,
    parse_percent,
    percent_of,
    round_half_up,
)

# --- currency_exponent ---


@pytest.mark.parametrize(
    ("code", "exponent"), [("USD", 2), ("EUR", 2), ("JPY", 0), ("BHD", 3), ("CLF", 4)]
)
def test_currency_exponent_reads_the_iso_table(code: str, exponent: int) -> None:
    assert currency_exponent(code) == exponent


@pytest.mark.parametrize("code", ["usd", "US", "USDX", "XAU", "XDR", "", 840])
def test_currency_exponent_rejects_anything_not_an_active_uppercase_code(code: object) -> None:
    with pytest.raises(UnknownCurrency, match="unknown currency"):
        currency_exponent(code)  # type: ignore[arg-type]


# --- parse_percent ---


@pytest.mark.parametrize("text", ["10", "12.5", "0", "100", "0.125", "100.00", "33.33"])
def test_parse_percent_accepts_plain_decimal_strings_exactly(text: str) -> None:
    assert parse_percent(text) == Decimal(text)


def test_parse_percent_keeps_the_exact_decimal_value() -> None:
    assert parse_percent("12.5") == Decimal(25) / Decimal(2)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("100.01", "at most 100"),
        ("101", "at most 100"),
        ("-1", "negative"),
        ("-0.5", "negative"),
        ("1e1", "decimal string"),
        ("", "decimal string"),
        ("abc", "decimal string"),
        ("NaN", "decimal string"),
        ("Infinity", "decimal string"),
        (" 10", "decimal string"),
        ("10 ", "decimal string"),
        ("+5", "decimal string"),
        ("1,5", "decimal string"),
        ("10.", "decimal string"),
        ("10%", "decimal string"),
        ("\u0661\u0660", "decimal string"),  # Arabic-Indic "10": Decimal() would take it
        (10, "got int"),
        (Decimal("10"), "got Decimal"),
        (None, "got NoneType"),
    ],
)
def test_parse_percent_rejects_anything_but_a_decimal_string_from_0_to_100(
    value: object, message: str
) -> None:
    with pytest.raises(InvalidPercent, match=message):
        parse_percent(value)  # type: ignore[arg-type]


# --- round_half_up ---


@pytest.mark.parametrize(
    ("value", "rounded"),
    [
        ("0.5", 1),
        ("1.5", 2),
        ("2.5", 3),  # not banker's rounding
        ("2.4999", 2),
        ("2.5001", 3),
        ("-0.5", -1),
        ("-2.5", -3),
        ("-2.4999", -2),
        ("7", 7),
        ("0", 0),
    ],
)
def test_round_half_up_rounds_halves_away_from_zero(value: str, rounded: int) -> None:
    assert round_half_up(Decimal(value)) == rounded


def test_round_half_up_returns_a_plain_int() -> None:
    assert type(round_half_up(Decimal("3.5"))) is int


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), 5, "5"])
def test_round_half_up_refuses_non_finite_or_non_decimal_values(value: object) -> None:
    with pytest.raises(ValueError, match="finite Decimal"):
        round_half_up(value)  # type: ignore[arg-type]


# --- percent_of ---


def test_ten_percent_of_an_odd_amount_rounds_half_up() -> None:
    assert percent_of(5, Decimal("10")) == 1  # 0.5 -> 1
    assert percent_of(15, Decimal("10")) == 2  # 1.5 -> 2
    assert percent_of(25, Decimal("10")) == 3  # 2.5 -> 3, not 2


def test_ten_percent_of_a_negative_odd_amount_rounds_away_from_zero() -> None:
    assert percent_of(-5, Decimal("10")) == -1


def test_ten_percent_of_33_333_33_dollars_is_3_333_33() -> None:
    assert percent_of(3_333_333, Decimal("10")) == 333_333  # 333,333.3 -> 333,333


def test_fractional_percentages_are_applied_exactly_before_rounding() -> None:
    assert percent_of(4, parse_percent("12.5")) == 1  # 0.5 -> 1
    assert percent_of(3, parse_percent("12.5")) == 0  # 0.375 -> 0
    assert percent_of(1_000_000, parse_percent("0.125")) == 1_250


def test_zero_and_hundred_percent_are_exact() -> None:
    assert percent_of(987_654_321, Decimal("0")) == 0
    assert percent_of(987_654_321, Decimal("100")) == 987_654_321


def test_percent_of_a_huge_amount_loses_no_digits() -> None:
    # 12.5% of 10**30 + 1 is 1.25 * 10**29 + 0.125: beyond default 28-digit precision.
    assert percent_of(10**30 + 1, Decimal("12.5")) == 125 * 10**27


@pytest.mark.parametrize("amount", [True, Decimal("5"), "5", None])
def test_percent_of_only_takes_int_minor_units(amount: object) -> None:
    with pytest.raises(InvalidAmount, match="int of minor units"):
        percent_of(amount, Decimal("10"))  # type: ignore[arg-type]


@pytest.mark.parametrize("percent", [10, "10", Decimal("NaN")])
def test_percent_of_only_takes_a_finite_decimal_percentage(percent: object) -> None:
    with pytest.raises(InvalidPercent):
        percent_of(100, percent)  # type: ignore[arg-type]


# --- allocate ---


def test_ten_million_splits_thirty_forty_thirty_exactly() -> None:
    assert allocate(10_000_000, [30, 40, 30]) == [3_000_000, 4_000_000, 3_000_000]


def test_a_hundred_over_three_equal_weights_gives_the_extra_unit_to_the_first() -> None:
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]


def test_two_units_over_three_equal_weights_go_to_the_earliest_indexes() -> None:
    assert allocate(2, [1, 1, 1]) == [1, 1, 0]


def test_leftover_units_go_to_the_largest_remainders_first() -> None:
    # exact shares 3.333, 3.333, 3.334: only the last has the largest remainder
    weights = [Decimal("33.33"), Decimal("33.33"), Decimal("33.34")]
    assert allocate(10, weights) == [3, 3, 4]


def test_a_negative_total_mirrors_the_positive_split() -> None:
    assert allocate(-100, [1, 1, 1]) == [-34, -33, -33]


def test_zero_weights_get_nothing() -> None:
    assert allocate(5, [0, 1, 0]) == [0, 5, 0]


def test_allocated_parts_always_sum_to_the_total() -> None:
    weight_sets: list[list[int | Decimal]] = [
        [1, 1, 1],
        [7, 3],
        [Decimal("12.5"), Decimal("87.5")],
        [1, 2, 3, 4, 5, 6, 7],
        [0, 0, 1],
    ]
    for total in [0, 1, 2, 99, 100, 101, 3_333_333, -7, -1_000_001]:
        for weights in weight_sets:
            parts = allocate(total, weights)
            assert sum(parts) == total
            assert len(parts) == len(weights)


@pytest.mark.parametrize(
    "weights",
    [[], [0, 0], [1, -1], [True, 1], ["1", 1], [Decimal("NaN"), 1]],
)
def test_allocate_rejects_empty_negative_all_zero_or_non_numeric_weights(
    weights: list[object],
) -> None:
    with pytest.raises(ValueError):
        allocate(100, weights)  # type: ignore[arg-type]


def test_allocate_rejects_a_non_int_total() -> None:
    with pytest.raises(InvalidAmount):
        allocate(Decimal("100"), [1, 1])  # type: ignore[arg-type]


# --- parse_major / format_minor ---


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("33333.33", "USD", 3_333_333),
        ("30000", "USD", 3_000_000),
        ("0.05", "USD", 5),
        ("12.5", "USD", 1_250),
        ("-12.50", "USD", -1_250),
        ("1000", "JPY", 1_000),
        ("1.234", "BHD", 1_234),
        ("1.2", "BHD", 1_200),
        ("0.0001", "CLF", 1),
        ("0", "USD", 0),
    ],
)
def test_parse_major_converts_major_units_to_minor_units(
    amount: str, currency: str, minor: int
) -> None:
    assert parse_major(amount, currency) == minor


@pytest.mark.parametrize(
    ("amount", "currency"),
    [("1.234", "USD"), ("1000.0", "JPY"), ("1.5", "JPY"), ("1.2345", "BHD")],
)
def test_parse_major_refuses_more_decimals_than_the_currency_has(
    amount: str, currency: str
) -> None:
    with pytest.raises(InvalidAmount, match="decimal places"):
        parse_major(amount, currency)


@pytest.mark.parametrize(
    "amount",
    ["1e3", "abc", "", " 1", "1 ", "1,000.00", "+1", "1.", ".5", "NaN", "--1", 1000, Decimal("1")],
)
def test_parse_major_rejects_anything_but_a_plain_decimal_string(amount: object) -> None:
    with pytest.raises(InvalidAmount, match="decimal string"):
        parse_major(amount, "USD")  # type: ignore[arg-type]


def test_parse_major_rejects_an_unknown_currency() -> None:
    with pytest.raises(UnknownCurrency):
        parse_major("10.00", "usd")


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (3_000_000, "USD", "30,000.00"),
        (-300_000, "USD", "-3,000.00"),
        (5, "USD", "0.05"),
        (-5, "USD", "-0.05"),
        (0, "USD", "0.00"),
        (123_456_789_012, "EUR", "1,234,567,890.12"),
        (1_000, "JPY", "1,000"),
        (-1_234_567, "JPY", "-1,234,567"),
        (1_234, "BHD", "1.234"),
        (1_234_567, "BHD", "1,234.567"),
        (12_345, "CLF", "1.2345"),
    ],
)
def test_format_minor_writes_major_units_with_the_currency_decimals(
    minor: int, currency: str, text: str
) -> None:
    assert format_minor(minor, currency) == text


def test_parse_major_reads_back_what_format_minor_writes_without_separators() -> None:
    for currency in ["USD", "JPY", "BHD", "CLF"]:
        for minor in [0, 1, 7, 999, 1_000, 3_333_333, -42]:
            text = format_minor(minor, currency).replace(",", "")
            assert parse_major(text, currency) == minor


def test_format_minor_rejects_a_bool_amount() -> None:
    with pytest.raises(InvalidAmount):
        format_minor(True, "USD")
