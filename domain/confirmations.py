"""Regulator confirmation ids: the pattern a milestone expects them in, checked safely.

Patterns come from admins and ids from other systems, so both are bounded, and matching runs
with the ``regex`` package's timeout: a pattern that backtracks catastrophically (``(a|aa)+$``)
is stopped after ``MATCH_TIMEOUT_SECONDS`` instead of holding a worker (stdlib ``re`` has no
timeout). A pattern must match the whole id (``fullmatch``): ``FCA-\\d{6}`` never accepts
``xFCA-123456y``.
"""

import regex

MAX_PATTERN_CHARS = 200
MAX_CONFIRMATION_CHARS = 200
MATCH_TIMEOUT_SECONDS = 0.05

# Run ends that are a verdict on the filing itself: the confirmation stays used. Any other end
# (expired, ineligible, cancelled, failed) releases it, so the same filing can be triggered again.
KEEPS_CONFIRMATION = frozenset({"billed", "rejected"})


class InvalidPattern(ValueError):
    """The pattern does not compile, or is too long."""


class PatternTooSlow(ValueError):
    """Matching took longer than the timeout: the pattern backtracks catastrophically."""


def compile_pattern(pattern: str) -> regex.Pattern[str]:
    if not pattern:
        raise InvalidPattern("a confirmation pattern must not be empty")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise InvalidPattern(f"a confirmation pattern has at most {MAX_PATTERN_CHARS} characters")
    try:
        return regex.compile(pattern)
    except regex.error as exc:
        raise InvalidPattern(f"{pattern!r} is not a regular expression: {exc}") from None


def matches(pattern: str, confirmation_id: str) -> bool:
    """Whether the whole id matches; ``PatternTooSlow`` when the pattern would not finish."""
    try:
        return (
            compile_pattern(pattern).fullmatch(confirmation_id, timeout=MATCH_TIMEOUT_SECONDS)
            is not None
        )
    except TimeoutError:
        raise PatternTooSlow(
            f"the confirmation pattern {pattern!r} took over {MATCH_TIMEOUT_SECONDS * 1000:g} ms "
            "on this id; the engagement's admin should simplify it"
        ) from None


def confirmation_error(terms: dict[str, object] | None, confirmation_id: str | None) -> str | None:
    """Why a trigger's confirmation id does not satisfy the milestone's ``confirmation`` terms
    (``{"required": bool, "pattern": str | None}``); None when it does."""
    if not terms:
        return None
    if confirmation_id is None:
        if terms.get("required"):
            return "this milestone accepts a trigger only with its regulator's confirmation_id"
        return None
    pattern = terms.get("pattern")
    if not isinstance(pattern, str):
        return None
    try:
        if matches(pattern, confirmation_id):
            return None
    except PatternTooSlow as exc:
        return str(exc)
    return f"{confirmation_id!r} does not match the milestone's pattern {pattern!r}"
