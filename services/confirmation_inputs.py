"""Regulator confirmations as inputs: a milestone's ``confirmation`` terms and the id a trigger
carries (see ``domain.confirmations`` for the rules)."""

from typing import Annotated

from pydantic import Field, StrictBool

from domain.confirmations import MAX_CONFIRMATION_CHARS, compile_pattern
from services.fields import Strict, checked_by


class ConfirmationIn(Strict):
    """Triggers carry the regulator's confirmation id (``required``), matching ``pattern`` whole.

    The pattern is compiled here (a bad one is a 422) and bounded in length; matching runs with a
    timeout (``domain.confirmations``), so a backtracking pattern cannot hold a worker."""

    required: StrictBool = True
    pattern: Annotated[str, Field(strict=True), checked_by(compile_pattern, "pattern")] | None = (
        None
    )


# A confirmation id as a trigger carries it: printable, no surrounding whitespace.
ConfirmationId = Annotated[
    str,
    Field(
        strict=True,
        min_length=1,
        max_length=MAX_CONFIRMATION_CHARS,
        pattern=r"^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$",
    ),
]
