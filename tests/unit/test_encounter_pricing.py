from datetime import date
from decimal import Decimal

import pytest

from domain.bounds import MAX_AMOUNT_MINOR
from domain.encounter_pricing import (
    AmountOutOfBounds,
    FeeEntry,
    UnitsNotAllowed,
    UnknownModifier,
    in_effect,
    max_units,
    parse_modifier_percent,
    price,
)

OFFICE_VISIT = FeeEntry(10_000, modifiers={"26": Decimal("40"), "50": Decimal("150")})


def test_an_encounter_without_modifiers_bills_the_scheduled_amount():
    priced = price(OFFICE_VISIT, 1, [])
    assert (priced.amount_minor, priced.unit_amount_minor, priced.modifiers) == (10_000, 10_000, ())


def test_a_modifier_scales_the_fee_by_its_percent():
    assert price(OFFICE_VISIT, 1, ["26"]).amount_minor == 4_000
    assert price(OFFICE_VISIT, 1, ["50"]).amount_minor == 15_000


def test_modifiers_multiply_and_are_reported_in_the_order_given():
    priced = price(OFFICE_VISIT, 1, ["50", "26"])
    assert priced.amount_minor == 6_000  # 10,000 x 1.5 x 0.4
    assert priced.modifiers == (("50", "150"), ("26", "40"))


def test_units_multiply_a_per_unit_code_up_to_its_limit():
    therapy = FeeEntry(3_333, units=4)
    assert price(therapy, 4, []).amount_minor == 13_332
    with pytest.raises(UnitsNotAllowed, match="at most 4 units"):
        price(therapy, 5, [])


def test_a_per_visit_code_bills_one_unit_only():
    with pytest.raises(UnitsNotAllowed, match="one unit"):
        price(OFFICE_VISIT, 2, [])
    assert max_units(True) > 1000 and max_units(False) == 1


def test_the_amount_is_rounded_once_at_the_end_half_up():
    # 333 x 3 units x 62.5 % x 62.5 % = 390.234375 -> 390; rounding each step would drift.
    entry = FeeEntry(333, units=True, modifiers={"52": Decimal("62.5"), "53": Decimal("62.5")})
    assert price(entry, 3, ["52", "53"]).amount_minor == 390
    # 101 x 50 % = 50.5 -> 51 (half up)
    assert price(FeeEntry(101, modifiers={"52": Decimal("50")}), 1, ["52"]).amount_minor == 51


def test_a_modifier_the_schedule_does_not_list_is_refused():
    with pytest.raises(UnknownModifier, match="'59' has no percent"):
        price(OFFICE_VISIT, 1, ["59"])
    with pytest.raises(UnknownModifier, match="repeated"):
        price(OFFICE_VISIT, 1, ["26", "26"])


def test_an_amount_beyond_one_lines_bound_is_refused():
    entry = FeeEntry(MAX_AMOUNT_MINOR, units=True)
    assert price(entry, 1, []).amount_minor == MAX_AMOUNT_MINOR
    with pytest.raises(AmountOutOfBounds):
        price(entry, 2, [])


@pytest.mark.parametrize("text", ["0", "-5", "1000.5", "12.34567", "1e2", "", " 40", 40])
def test_a_modifier_percent_is_a_bounded_decimal_string(text):
    with pytest.raises(ValueError):
        parse_modifier_percent(text)  # type: ignore[arg-type]


def test_modifier_percents_above_a_hundred_are_allowed():
    assert parse_modifier_percent("150") == Decimal(150)
    assert parse_modifier_percent("62.5") == Decimal("62.5")


VERSIONS = [date(2026, 1, 1), date(2026, 7, 1), date(2027, 1, 1)]


@pytest.mark.parametrize(
    ("on", "index"),
    [
        (date(2025, 12, 31), None),
        (date(2026, 1, 1), 0),
        (date(2026, 6, 30), 0),
        (date(2026, 7, 1), 1),
        (date(2026, 12, 31), 1),
        (date(2030, 1, 1), 2),
    ],
)
def test_the_version_in_effect_is_the_latest_that_started_by_the_service_date(on, index):
    assert in_effect(VERSIONS, on) == index


def test_no_version_is_in_effect_without_versions():
    assert in_effect([], date(2026, 1, 1)) is None
