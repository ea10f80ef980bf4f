"""Which cap threshold a period close reaches for the first time (services/tm_cap_notices.py)."""

import pytest

from services.tm_cap_notices import crossed


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (0, 799_999, None),  # short of 80 %
        (0, 800_000, 80),  # exactly 80 %
        (700_000, 900_000, 80),
        (850_000, 950_000, None),  # 80 % already told, 100 % not reached
        (850_000, 1_000_000, 100),
        (0, 1_000_000, 100),  # one close past both: only the highest is told
        (1_000_000, 1_000_000, None),  # nothing new
        (900_000, 700_000, None),  # a credit lowers what is billed
    ],
)
def test_the_highest_threshold_newly_reached(before: int, after: int, expected: int | None):
    assert crossed(before, after, 1_000_000) == expected


def test_a_cap_of_odd_size_compares_exactly_without_rounding():
    assert crossed(0, 799, 999) is None  # 799 / 999 < 80 %
    assert crossed(0, 800, 999) == 80  # 800 / 999 > 80 %
