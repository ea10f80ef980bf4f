"""The milestone lifecycle: which moves are allowed, and where a run's end leaves a milestone."""

from decimal import Decimal

import pytest

from domain.lifecycle import (
    CLAIMABLE,
    IllegalTransition,
    MilestoneStatus,
    RunStage,
    status_after_billing,
    status_after_unbilled_end,
    transition,
)


def test_a_trigger_may_claim_a_milestone_that_is_pending_rejected_ineligible_or_partly_accepted():
    assert {
        MilestoneStatus.PENDING,
        MilestoneStatus.REJECTED,
        MilestoneStatus.INELIGIBLE,
        MilestoneStatus.PARTIALLY_ACCEPTED,
    } == CLAIMABLE


@pytest.mark.parametrize("final", ["accepted", "waived", "removed"])
def test_a_settled_milestone_goes_nowhere(final: str):
    with pytest.raises(IllegalTransition, match=f"from {final} to in_review"):
        transition(final, MilestoneStatus.IN_REVIEW)


def test_staying_put_is_always_allowed():
    assert transition("accepted", MilestoneStatus.ACCEPTED) == MilestoneStatus.ACCEPTED


def test_billing_accepts_fully_only_at_one_hundred_percent():
    assert status_after_billing(Decimal("100")) == MilestoneStatus.ACCEPTED
    assert status_after_billing(Decimal("90")) == MilestoneStatus.PARTIALLY_ACCEPTED


@pytest.mark.parametrize(
    ("stage", "expected"),
    [
        (RunStage.REJECTED, MilestoneStatus.REJECTED),
        (RunStage.INELIGIBLE, MilestoneStatus.INELIGIBLE),
        (RunStage.EXPIRED, MilestoneStatus.PENDING),
        (RunStage.CANCELLED, MilestoneStatus.PENDING),
        (RunStage.FAILED, MilestoneStatus.PENDING),
    ],
)
def test_a_run_that_ends_unbilled_hands_the_milestone_back(stage: RunStage, expected: str):
    assert status_after_unbilled_end(Decimal("0"), stage) == expected
    assert transition(MilestoneStatus.IN_REVIEW, expected) == expected


def test_an_earlier_partial_acceptance_survives_a_later_run_that_ends_unbilled():
    assert status_after_unbilled_end(Decimal("90"), RunStage.CANCELLED) == (
        MilestoneStatus.PARTIALLY_ACCEPTED
    )
