import random
from decimal import Decimal

import pytest

from domain.billing import Charge, cumulative_charge
from domain.money import InvalidAmount, InvalidPercent, parse_percent, percent_of

TEN = Decimal("10")
HUNDRED = Decimal("100")


def bill_in_steps(fee: int, steps: list[str], retention: str) -> list[Charge]:
    """Run cumulative_charge once per cumulative percentage, carrying the totals."""
    charges: list[Charge] = []
    billed = retained = 0
    for step in steps:
        charge = cumulative_charge(fee, parse_percent(step), billed, retained, Decimal(retention))
        charges.append(charge)
        billed += charge.gross_minor
        retained += charge.retention_minor
    return charges


def test_ten_percent_retention_of_33_333_33_dollars_leaves_exactly_30_000_net() -> None:
    charge = cumulative_charge(3_333_333, HUNDRED, 0, 0, TEN)
    assert charge == Charge(gross_minor=3_333_333, retention_minor=333_333, net_minor=3_000_000)


def test_billing_ninety_then_a_hundred_percent_totals_exactly_the_fee() -> None:
    first, second = bill_in_steps(3_333_333, ["90", "100"], "10")
    # 90% is 2,999,999.7 -> 3,000,000; its 10% retention is 300,000.
    assert first == Charge(gross_minor=3_000_000, retention_minor=300_000, net_minor=2_700_000)
    # The rest is whatever brings the totals to 3,333,333 and 333,333.
    assert second == Charge(gross_minor=333_333, retention_minor=33_333, net_minor=300_000)


def test_thirds_bill_the_whole_fee_even_though_each_third_rounds() -> None:
    charges = bill_in_steps(100, ["33.33", "66.66", "100"], "0")
    assert [c.gross_minor for c in charges] == [33, 34, 33]
    assert sum(c.gross_minor for c in charges) == 100


def test_cumulative_billing_never_drifts_whatever_the_fee_split_or_retention() -> None:
    fees = [1, 7, 99, 101, 3_333_333, 1_000_001, 123_456_789]
    schedules = [
        ["33.33", "66.66", "100"],
        ["90", "100"],
        ["12.5", "25", "37.5", "50", "62.5", "75", "87.5", "100"],
        ["0.125", "50", "50", "99.99", "100"],
        ["100"],
    ]
    retentions = ["0", "5", "10", "12.5", "33.33", "100"]
    for fee in fees:
        for steps in schedules:
            for retention in retentions:
                charges = bill_in_steps(fee, steps, retention)
                total_gross = sum(c.gross_minor for c in charges)
                total_retention = sum(c.retention_minor for c in charges)
                total_net = sum(c.net_minor for c in charges)
                assert total_gross == fee
                assert total_retention == percent_of(fee, Decimal(retention))
                assert total_net == fee - total_retention
                assert all(c.gross_minor >= 0 and c.retention_minor >= 0 for c in charges)
                assert all(c.net_minor >= 0 for c in charges)


def test_each_run_brings_the_billed_total_to_the_rounded_cumulative_target() -> None:
    fee = 1_000_001
    steps = ["12.5", "25", "37.5", "50", "62.5", "75", "87.5", "100"]
    billed = 0
    for step, charge in zip(steps, bill_in_steps(fee, steps, "10"), strict=True):
        billed += charge.gross_minor
        assert billed == percent_of(fee, Decimal(step))


def test_repeating_the_same_percentage_bills_nothing_more() -> None:
    charge = cumulative_charge(1_000, Decimal("50"), 500, 50, TEN)
    assert charge == Charge(gross_minor=0, retention_minor=0, net_minor=0)


def test_a_lower_cumulative_percentage_than_already_billed_is_refused() -> None:
    with pytest.raises(ValueError, match="already billed"):
        cumulative_charge(1_000, Decimal("50"), 600, 0, Decimal("0"))


def test_retained_totals_that_do_not_match_the_retention_rate_are_refused() -> None:
    with pytest.raises(ValueError, match="retention"):
        cumulative_charge(1_000, HUNDRED, 500, 400, TEN)


@pytest.mark.parametrize(
    ("fee", "billed", "retained"),
    [(True, 0, 0), (-1, 0, 0), (1_000, -1, 0), (1_000, 0, Decimal("1")), ("1000", 0, 0)],
)
def test_amounts_must_be_non_negative_ints(fee: object, billed: object, retained: object) -> None:
    with pytest.raises(InvalidAmount):
        cumulative_charge(fee, HUNDRED, billed, retained, TEN)  # type: ignore[arg-type]


@pytest.mark.parametrize("percent", [Decimal("100.01"), Decimal("-1"), Decimal("NaN"), 50, "50"])
def test_percentages_must_be_decimals_from_zero_to_a_hundred(percent: object) -> None:
    with pytest.raises(InvalidPercent):
        cumulative_charge(1_000, percent, 0, 0, TEN)  # type: ignore[arg-type]
    with pytest.raises(InvalidPercent):
        cumulative_charge(1_000, HUNDRED, 0, 0, percent)  # type: ignore[arg-type]


def test_a_charge_whose_net_and_retention_do_not_add_up_cannot_exist() -> None:
    with pytest.raises(ValueError, match="!= gross"):
        Charge(gross_minor=100, retention_minor=10, net_minor=80)


def random_schedule(rng: random.Random) -> list[str]:
    """A non-decreasing list of cumulative percentages with up to 2 decimals, ending at 100."""
    hundredths = [*sorted(rng.choices(range(10_001), k=rng.randint(0, 30))), 10_000]
    return [f"{h // 100}.{h % 100:02d}".removesuffix(".00") for h in hundredths]


def test_partial_cumulative_billing_over_many_splits_never_drifts() -> None:
    fees = [1, 7, 99, 100, 3_333_333, 10**12 + 7]
    for seed in range(300):
        rng = random.Random(seed)
        steps = random_schedule(rng)
        retention = rng.choice(["0", "5", "10", "12.5", "33.33", "99.99", "100"])
        for fee in fees:
            charges = bill_in_steps(fee, steps, retention)
            assert sum(c.gross_minor for c in charges) == fee, (seed, fee, steps)
            assert sum(c.retention_minor for c in charges) == percent_of(fee, Decimal(retention))
            for charge in charges:
                assert charge.net_minor + charge.retention_minor == charge.gross_minor
                assert min(charge.gross_minor, charge.retention_minor, charge.net_minor) >= 0
