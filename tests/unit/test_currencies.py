import re

from domain.currencies import ISO_4217_EXPONENTS


def test_the_table_covers_every_active_currency() -> None:
    assert len(ISO_4217_EXPONENTS) >= 150
    assert all(re.fullmatch(r"[A-Z]{3}", code) for code in ISO_4217_EXPONENTS)


def test_common_currencies_have_their_iso_exponents() -> None:
    expected = {
        "USD": 2,
        "EUR": 2,
        "GBP": 2,
        "CHF": 2,
        "JPY": 0,
        "KRW": 0,
        "CLP": 0,
        "XOF": 0,
        "BHD": 3,
        "KWD": 3,
        "JOD": 3,
        "OMR": 3,
        "TND": 3,
        "IQD": 3,
        "LYD": 3,
        "CLF": 4,
    }
    assert {code: ISO_4217_EXPONENTS[code] for code in expected} == expected


def test_metals_units_of_account_and_test_codes_are_excluded() -> None:
    excluded = {"XAU", "XAG", "XPD", "XPT", "XDR", "XUA", "XSU", "XBA", "XTS", "XXX"}
    assert excluded.isdisjoint(ISO_4217_EXPONENTS)


def test_exponents_are_only_the_ones_iso_uses() -> None:
    assert set(ISO_4217_EXPONENTS.values()) == {0, 2, 3, 4}
