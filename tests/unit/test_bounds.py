"""The money bounds leave every sum Tollgate keeps inside a signed 64-bit BIGINT."""

import pytest

from domain.bounds import (
    BIGINT_MAX,
    MAX_AMOUNT_MINOR,
    MAX_INVOICE_MINOR,
    OutOfBounds,
    check_amount,
    fits_invoice,
)
from domain.success_fee import InvalidSuccessFee, parse_success_fee_terms, success_fee


def test_amounts_up_to_the_maximum_pass_and_one_more_is_refused_naming_what() -> None:
    assert check_amount(MAX_AMOUNT_MINOR) == MAX_AMOUNT_MINOR
    assert check_amount(-MAX_AMOUNT_MINOR) == -MAX_AMOUNT_MINOR
    with pytest.raises(OutOfBounds, match="fee_minor"):
        check_amount(MAX_AMOUNT_MINOR + 1, "fee_minor")


def test_an_invoice_takes_lines_up_to_its_maximum_total_in_either_direction() -> None:
    assert fits_invoice(MAX_INVOICE_MINOR - MAX_AMOUNT_MINOR, MAX_AMOUNT_MINOR)
    assert not fits_invoice(MAX_INVOICE_MINOR, 1)
    assert not fits_invoice(-MAX_INVOICE_MINOR, -1)


def test_ninety_full_invoices_and_a_maximum_line_still_fit_in_a_bigint() -> None:
    assert 90 * (MAX_INVOICE_MINOR + MAX_AMOUNT_MINOR) < BIGINT_MAX


@pytest.mark.parametrize(
    ("field", "value"),
    [("cap_minor", MAX_AMOUNT_MINOR + 1), ("floor_minor", BIGINT_MAX), ("baseline", "9" * 30)],
)
def test_success_fee_terms_beyond_the_maximum_amount_are_refused(field: str, value: object) -> None:
    terms = {"percent": "15", "metric": "revenue", "baseline": "0.00", field: value}
    with pytest.raises(InvalidSuccessFee, match=field):
        parse_success_fee_terms(terms, "USD")


def test_a_measurement_of_thirty_nines_is_refused_rather_than_billed() -> None:
    terms = parse_success_fee_terms({"percent": "15", "metric": "revenue", "baseline": "0"}, "USD")
    with pytest.raises(InvalidSuccessFee, match="maximum"):
        success_fee(terms, "9" * 30, "USD")


def test_an_uncapped_fee_above_the_maximum_is_refused_and_a_capped_one_bills_the_cap() -> None:
    raw = {"percent": "100", "metric": "revenue", "baseline": "-10000000000000.00"}
    measured = "10000000000000.00"
    with pytest.raises(InvalidSuccessFee, match="cap_minor"):
        success_fee(parse_success_fee_terms(raw, "USD"), measured, "USD")
    capped = parse_success_fee_terms({**raw, "cap_minor": MAX_AMOUNT_MINOR}, "USD")
    assert success_fee(capped, measured, "USD").amount_minor == MAX_AMOUNT_MINOR
