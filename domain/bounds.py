"""Upper bounds on what Tollgate accepts, so nothing accepted can overflow or fail later.

Money is stored in signed 64-bit BIGINT columns (at most ``BIGINT_MAX`` about 9.22e18). The
bounds leave room for every sum Tollgate keeps:

- one amount (a fee, a success-fee cap or floor, a computed success fee, a credit-note line) is
  at most ``MAX_AMOUNT_MINOR`` = 10**15 minor units (10 trillion dollars);
- a milestone's billed and retained sums never exceed its fee, so they are bounded by it too;
- one invoice's |total| is at most ``MAX_INVOICE_MINOR`` = 10**17: billing opens a fresh draft
  rather than cross it, so an invoice holds at least 100 maximum amounts;
- sums over invoices or over an engagement's escrow would need over 92 maximum invoices, or
  9,223 maximum amounts, before they reached ``BIGINT_MAX``.

Stdlib only: imported (through domain.money) inside the Temporal workflow sandbox.
"""

from typing import Final

BIGINT_MAX: Final = 2**63 - 1
MAX_AMOUNT_MINOR: Final = 10**15
MAX_INVOICE_MINOR: Final = 10**17
# A decimal number as text (a KPI value, a threshold, a success-fee measurement or baseline).
MAX_DECIMAL_CHARS: Final = 40
MAX_KPIS: Final = 100
MAX_KPI_NAME_CHARS: Final = 100
# JSON request bodies: size and nesting depth (objects and arrays) anywhere in the body.
MAX_JSON_BODY_BYTES: Final = 1024 * 1024
MAX_JSON_DEPTH: Final = 32


class OutOfBounds(ValueError):
    """An amount above what Tollgate bills in one piece."""


def check_amount(amount_minor: int, what: str = "amount") -> int:
    """`amount_minor` if its magnitude is within MAX_AMOUNT_MINOR; OutOfBounds naming `what`."""
    if abs(amount_minor) > MAX_AMOUNT_MINOR:
        raise OutOfBounds(
            f"{what} {amount_minor} is beyond the maximum of {MAX_AMOUNT_MINOR} minor units"
        )
    return amount_minor


def fits_invoice(total_minor: int, added_minor: int) -> bool:
    """Whether an invoice totalling `total_minor` can take lines adding `added_minor`."""
    return abs(total_minor + added_minor) <= MAX_INVOICE_MINOR
