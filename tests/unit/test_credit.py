from decimal import Decimal

import pytest

from domain.credit import (
    CreditExceedsLine,
    InvalidCredit,
    check_credit,
    clawback_minor,
    creditable_minor,
)
from domain.money import InvalidAmount, InvalidPercent, format_minor


def usd(minor: int) -> str:
    return format_minor(minor, "USD")


# --- creditable_minor ---


def test_an_uncredited_line_can_be_credited_in_full() -> None:
    assert creditable_minor(500_000, 0) == 500_000


def test_earlier_credits_reduce_what_is_left() -> None:
    assert creditable_minor(500_000, 200_001) == 299_999
    assert creditable_minor(500_000, 500_000) == 0


@pytest.mark.parametrize("invoiced", [0, -50_000])
def test_zero_and_negative_lines_are_not_creditable(invoiced: int) -> None:
    assert creditable_minor(invoiced, 0) == 0


def test_credits_above_the_invoiced_amount_are_corrupt_totals_not_zero() -> None:
    with pytest.raises(InvalidCredit, match="cannot already be credited"):
        creditable_minor(500, 501)
    with pytest.raises(InvalidCredit, match="cannot already be credited"):
        creditable_minor(-500, 1)


@pytest.mark.parametrize(
    ("invoiced", "credited"), [(True, 0), (500, False), ("500", 0), (500, 1.0), (500, -1)]
)
def test_totals_must_be_ints_and_credits_positive(invoiced: object, credited: object) -> None:
    with pytest.raises(InvalidCredit):
        creditable_minor(invoiced, credited)  # type: ignore[arg-type]


# --- check_credit ---


@pytest.mark.parametrize(
    ("invoiced", "credited", "remaining"),
    [(500_000, 0, 500_000), (500_000, 200_000, 300_000), (1, 0, 1)],
)
def test_crediting_exactly_what_remains_is_allowed(
    invoiced: int, credited: int, remaining: int
) -> None:
    assert creditable_minor(invoiced, credited) == remaining
    assert check_credit(invoiced, credited, remaining) is None  # allowed: no refusal raised
    with pytest.raises(CreditExceedsLine):  # and it is the limit: one unit more is refused
        check_credit(invoiced, credited, remaining + 1)


def test_one_minor_unit_more_than_remains_is_refused() -> None:
    with pytest.raises(CreditExceedsLine):
        check_credit(500_000, 200_000, 300_001)


def test_the_refusal_says_how_much_can_still_be_credited() -> None:
    with pytest.raises(CreditExceedsLine) as caught:
        check_credit(500_000, 0, 500_001, describe=usd, line_id="lin_1")
    assert str(caught.value) == (
        "line lin_1 invoiced 5,000.00, already credited 0.00: "
        "at most 5,000.00 can be credited, not 5,000.01"
    )


def test_without_a_formatter_the_refusal_gives_minor_units() -> None:
    with pytest.raises(
        CreditExceedsLine, match="the line invoiced 10, already credited 4: at most 6"
    ):
        check_credit(10, 4, 7)


def test_a_fully_credited_line_refuses_any_further_credit() -> None:
    with pytest.raises(CreditExceedsLine, match="at most 0 can be credited"):
        check_credit(10, 10, 1)


@pytest.mark.parametrize("invoiced", [0, -50_000])
def test_zero_and_negative_lines_refuse_any_credit(invoiced: int) -> None:
    with pytest.raises(CreditExceedsLine, match="only lines with a positive amount"):
        check_credit(invoiced, 0, 1, describe=usd, line_id="lin_r")


@pytest.mark.parametrize("requested", [0, -1])
def test_zero_and_negative_credits_are_refused(requested: int) -> None:
    with pytest.raises(InvalidCredit, match="more than zero"):
        check_credit(500_000, 0, requested)


@pytest.mark.parametrize("requested", [True, 1.0, "1", Decimal("1"), None])
def test_credits_must_be_ints_of_minor_units(requested: object) -> None:
    with pytest.raises(InvalidCredit, match="int of minor units"):
        check_credit(500_000, 0, requested)  # type: ignore[arg-type]


# --- clawback_minor ---


def test_a_full_clawback_returns_the_whole_bonus() -> None:
    assert clawback_minor(333, Decimal("100")) == 333


def test_half_of_an_odd_bonus_rounds_half_up() -> None:
    assert clawback_minor(333, Decimal("50")) == 167
    assert clawback_minor(1, Decimal("50")) == 1


def test_a_zero_clawback_or_zero_bonus_is_zero() -> None:
    assert clawback_minor(333, Decimal("0")) == 0
    assert clawback_minor(0, Decimal("100")) == 0


@pytest.mark.parametrize(
    "percent", [Decimal("100.01"), Decimal("-1"), Decimal("NaN"), Decimal("Infinity"), 50, "50"]
)
def test_clawback_percentages_must_be_decimals_from_zero_to_a_hundred(percent: object) -> None:
    with pytest.raises(InvalidPercent):
        clawback_minor(333, percent)  # type: ignore[arg-type]


@pytest.mark.parametrize("billed", [-1, True, 1.0, "333"])
def test_the_billed_bonus_must_be_a_non_negative_int(billed: object) -> None:
    with pytest.raises(InvalidAmount):
        clawback_minor(billed, Decimal("50"))  # type: ignore[arg-type]
