"""Regulator confirmations: patterns checked at the door and matched whole with a timeout, the
per-filing milestone's rules, and which run ends keep a confirmation used."""

from typing import Any

import pytest
from pydantic import ValidationError

from api.schemas import TriggerIn
from domain.confirmations import (
    KEEPS_CONFIRMATION,
    MAX_PATTERN_CHARS,
    InvalidPattern,
    PatternTooSlow,
    compile_pattern,
    confirmation_error,
    matches,
)
from domain.lifecycle import UNBILLED_ENDS, RunStage
from services.inputs import EngagementIn, MilestoneIn
from services.mappings import MappingFailed, apply

FCA = r"FCA-\d{4}-\d{6}"


def test_a_pattern_matches_the_whole_id_only():
    assert matches(FCA, "FCA-2026-000123")
    assert not matches(FCA, "xFCA-2026-000123")
    assert not matches(FCA, "FCA-2026-000123 ")
    assert not matches(FCA, "FCA-2026-0001234")


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [("(", "not a regular expression"), ("", "empty"), ("a" * 201, "at most 200")],
)
def test_a_bad_or_unbounded_pattern_is_refused(pattern: str, reason: str):
    with pytest.raises(InvalidPattern, match=reason):
        compile_pattern(pattern)
    assert MAX_PATTERN_CHARS == 200


def test_a_catastrophically_backtracking_pattern_is_stopped_not_run_forever():
    with pytest.raises(PatternTooSlow, match="took over 50 ms"):
        matches(r"(a|aa)+$", "a" * 60 + "!")
    terms = {"required": True, "pattern": r"(a|aa)+$"}
    assert "simplify" in (confirmation_error(terms, "a" * 60 + "!") or "")


@pytest.mark.parametrize(
    ("terms", "given", "error"),
    [
        (None, None, None),
        (None, "anything", None),
        ({"required": False, "pattern": None}, None, None),
        ({"required": True, "pattern": None}, None, "only with its regulator's confirmation_id"),
        ({"required": True, "pattern": None}, "ANY-1", None),
        ({"required": True, "pattern": FCA}, "FCA-2026-000123", None),
        ({"required": True, "pattern": FCA}, "SEC-1", "does not match"),
        ({"required": False, "pattern": FCA}, "SEC-1", "does not match"),
    ],
)
def test_the_milestone_terms_decide_what_a_trigger_must_carry(
    terms: dict[str, Any] | None, given: str | None, error: str | None
):
    found = confirmation_error(terms, given)
    assert (found is None) if error is None else (error in (found or ""))


def test_a_confirmation_stays_used_once_billed_or_rejected_and_is_released_otherwise():
    assert {RunStage.BILLED, RunStage.REJECTED} == KEEPS_CONFIRMATION
    released = {s for s in UNBILLED_ENDS if s not in KEEPS_CONFIRMATION}
    assert released == {RunStage.EXPIRED, RunStage.INELIGIBLE, RunStage.CANCELLED, RunStage.FAILED}


def filing(**overrides: Any) -> dict[str, Any]:
    return {
        "key": "filing",
        "name": "Regulatory filing",
        "repeatable": True,
        "unit_fee_minor": 250_000,
        "confirmation": {"required": True, "pattern": FCA},
        **overrides,
    }


def refusal(milestone: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        MilestoneIn.model_validate(milestone)
    return "; ".join(e["msg"] for e in caught.value.errors())


def test_a_repeatable_milestone_stores_its_unit_fee_as_the_fee_per_filing():
    milestone = MilestoneIn.model_validate(filing())
    assert (milestone.stored_fee_minor, milestone.repeatable) == (250_000, True)
    assert milestone.confirmation is not None and milestone.confirmation.pattern == FCA


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"unit_fee_minor": None}, "needs unit_fee_minor"),
        ({"fee_minor": 1}, "omit fee_minor"),
        ({"allow_partial": True}, "cannot allow_partial"),
        ({"confirmation": None}, "once per regulator confirmation"),
        ({"confirmation": {"required": False}}, "once per regulator confirmation"),
        ({"kind": "success_fee", "success_fee": {}}, "only a standard milestone"),
        ({"repeatable": False, "fee_minor": 1}, "per-filing fee of a repeatable milestone"),
        ({"unit_fee_minor": -1}, "greater than or equal to 0"),
        ({"confirmation": {"pattern": "[a-"}}, "not a regular expression"),
        ({"confirmation": {"pattern": "a" * 201}}, "at most 200 characters"),
    ],
)
def test_a_repeatable_milestone_is_a_whole_standard_fee_per_confirmed_filing(
    overrides: dict[str, Any], reason: str
):
    assert reason in refusal(filing(**overrides))


def test_nothing_takes_a_percent_of_or_a_kpi_gate_on_a_repeatable_milestone():
    approval = {"roles": {"delivery_lead": ["prn_a"]}}
    body = {
        "customer_id": "cus_1",
        "name": "Filings",
        "currency": "GBP",
        "approval": approval,
        "milestones": [
            filing(),
            {
                "key": "bonus",
                "name": "Bonus",
                "kind": "bonus",
                "fee_percent_of": {"milestone": "filing", "percent": "5"},
            },
            {
                "key": "audit",
                "name": "Audit",
                "fee_minor": 1,
                "depends_on": [
                    {"milestone": "filing", "kpi": {"metric": "x", "op": ">=", "threshold": "1"}}
                ],
            },
        ],
    }
    with pytest.raises(ValidationError) as caught:
        EngagementIn.model_validate(body)
    message = str(caught.value)
    assert "a bonus is a percent of a one-off fee" in message
    assert "no one accepted KPI to gate on" in message
    body["milestones"][1:] = [
        {"key": "audit", "name": "Audit", "fee_minor": 1, "depends_on": [{"milestone": "filing"}]}
    ]
    EngagementIn.model_validate(body)  # depending on a first accepted filing is fine


@pytest.mark.parametrize("given", ["", " FCA-1", "FCA-1 ", "FCA\n1", "x" * 201, 12345], ids=repr)
def test_a_trigger_carries_a_bounded_printable_confirmation_id(given: Any):
    with pytest.raises(ValidationError):
        TriggerIn.model_validate({"confirmation_id": given})
    assert TriggerIn.model_validate({"confirmation_id": "SEC 0001-A"}).confirmation_id


def test_a_mapping_takes_the_confirmation_id_from_the_payload():
    mapping = {
        "milestone": "'filing'",
        "confirmation_id": "filing.regulator_ref",
        "kpis": {"accepted": "to_number(filing.accepted)"},
    }
    payload = {"filing": {"regulator_ref": "FCA-2026-000123", "accepted": 1}}
    mapped = apply(mapping, payload)
    assert mapped.trigger["confirmation_id"] == "FCA-2026-000123"  # type: ignore[union-attr]
    missing = apply(mapping, {"filing": {"accepted": 1}})
    assert "confirmation_id" not in missing.trigger  # type: ignore[union-attr]
    with pytest.raises(MappingFailed, match="not text"):
        apply(mapping, {"filing": {"regulator_ref": {"id": 1}, "accepted": 1}})
