from typing import Any

import pytest

from domain.change_orders import CONFLICT, INVALID, MilestoneState, Refusal, check_changes

# The platform migration: phase 2 depends on phase 1, phase 3 on phase 2.
PHASES = [
    MilestoneState("phase-1", "pending", machine_checkable=True),
    MilestoneState("phase-2", "pending", depends_on=("phase-1",), trigger="both"),
    MilestoneState("phase-3", "pending", depends_on=("phase-2",)),
]


def with_state(key: str, **state: Any) -> list[MilestoneState]:
    return [MilestoneState(**{**vars(m), **state}) if m.key == key else m for m in PHASES]


def update(key: str, **fields: Any) -> dict[str, Any]:
    return {"update": [{"milestone": key, **fields}]}


def messages(refusals: list[Refusal]) -> list[str]:
    return [r.message for r in refusals]


def test_raising_an_unbilled_milestones_fee_is_allowed() -> None:
    assert check_changes(PHASES, update("phase-3", fee_minor=3_200_000)) == []


def test_a_change_order_without_changes_is_invalid() -> None:
    assert check_changes(PHASES, {"update": [], "add": [], "remove": []}) == [
        Refusal(INVALID, "changes", "a change order needs at least one change")
    ]


def test_new_time_and_materials_terms_alone_are_a_change_that_touches_no_milestone() -> None:
    changes = {"update": [], "add": [], "remove": [], "time_and_materials": {"retention": True}}
    assert check_changes(PHASES, changes) == []


def test_an_unknown_milestone_is_invalid_and_named() -> None:
    assert check_changes(PHASES, update("phase-9", fee_minor=1)) == [
        Refusal(INVALID, "changes.update.0.milestone", "unknown milestone 'phase-9'")
    ]


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        ({"open_run_id": "run-1", "status": "in_review"}, "phase-3 has an open run (run-1)"),
        (
            {"status": "accepted", "billed_minor": 3_000_000, "accepted_percent": "100"},
            "phase-3 is already billed (100% accepted)",
        ),
        (
            {"status": "partially_accepted", "billed_minor": 1, "accepted_percent": "50"},
            "phase-3 is already billed (50% accepted)",
        ),
        ({"status": "waived"}, "phase-3 is waived"),
        ({"status": "removed"}, "phase-3 was removed by an earlier change order"),
    ],
)
def test_a_milestone_that_is_not_unbilled_may_not_change(
    state: dict[str, Any], reason: str
) -> None:
    refusals = check_changes(with_state("phase-3", **state), update("phase-3", fee_minor=1))
    assert refusals == [Refusal(CONFLICT, "changes.update.0.milestone", f"milestone {reason}")]


@pytest.mark.parametrize("status", ["pending", "rejected", "ineligible"])
def test_a_milestone_with_nothing_billed_and_no_open_run_may_change(status: str) -> None:
    assert check_changes(with_state("phase-1", status=status), update("phase-1", name="x")) == []


def test_removing_a_billed_milestone_is_a_conflict_even_when_others_depend_on_it() -> None:
    milestones = with_state("phase-1", status="accepted", billed_minor=5, accepted_percent="100")
    refusals = check_changes(milestones, {"remove": ["phase-1"]})
    assert [(r.kind, r.field) for r in refusals] == [(CONFLICT, "changes.remove.0")]


def test_changing_the_same_milestone_twice_is_invalid() -> None:
    changes = {**update("phase-3", fee_minor=1), "remove": ["phase-3"]}
    assert messages(check_changes(PHASES, changes)) == [
        "milestone phase-3 is changed more than once"
    ]


def test_an_added_milestone_needs_a_key_the_engagement_never_used() -> None:
    added = {"add": [{"key": "phase-2", "name": "Again", "fee_minor": 1}]}
    assert messages(check_changes(PHASES, added)) == [
        "milestone key 'phase-2' is already used by this engagement"
    ]
    removed = with_state("phase-3", status="removed")
    again = {"add": [{"key": "phase-3", "name": "Again", "fee_minor": 1}]}
    assert "removed milestones keep theirs" in messages(check_changes(removed, again))[0]


def test_adding_the_same_key_twice_is_invalid() -> None:
    new = {"key": "phase-4", "name": "Hypercare", "fee_minor": 1}
    refusals = check_changes(PHASES, {"add": [new, new]})
    assert refusals == [
        Refusal(INVALID, "changes.add.1.key", "milestone key 'phase-4' is added twice")
    ]


def test_removing_a_milestone_others_depend_on_is_invalid_and_names_the_dependant() -> None:
    assert check_changes(PHASES, {"remove": ["phase-2"]}) == [
        Refusal(
            INVALID,
            "changes.remove.0",
            "phase-3 depends on phase-2, which this change order removes",
        )
    ]


def test_removing_a_milestone_is_allowed_when_its_dependants_are_rewired() -> None:
    changes = {**update("phase-3", depends_on=[{"milestone": "phase-1"}]), "remove": ["phase-2"]}
    assert check_changes(PHASES, changes) == []


def test_a_dependency_that_closes_a_loop_is_invalid() -> None:
    refusals = check_changes(PHASES, update("phase-1", depends_on=[{"milestone": "phase-3"}]))
    assert messages(refusals) == ["cyclic depends_on: phase-1 → phase-3 → phase-2 → phase-1"]


def test_an_added_milestone_may_depend_on_existing_and_added_ones_but_not_unknown_ones() -> None:
    good = {
        "add": [
            {
                "key": "phase-4",
                "name": "a",
                "fee_minor": 1,
                "depends_on": [{"milestone": "phase-3"}],
            },
            {
                "key": "phase-5",
                "name": "b",
                "fee_minor": 1,
                "depends_on": [{"milestone": "phase-4"}],
            },
        ]
    }
    assert check_changes(PHASES, good) == []
    bad = {"add": [{"key": "phase-4", "name": "a", "depends_on": [{"milestone": "ghost"}]}]}
    assert check_changes(PHASES, bad) == [
        Refusal(INVALID, "changes.add.0.depends_on", "phase-4 depends on unknown milestone 'ghost'")
    ]


def test_depending_on_a_milestone_removed_earlier_is_invalid() -> None:
    milestones = [*PHASES, MilestoneState("legacy", "removed")]
    refusals = check_changes(milestones, update("phase-3", depends_on=[{"milestone": "legacy"}]))
    assert messages(refusals) == [
        "phase-3 depends on legacy, which was removed by an earlier change order"
    ]


def test_depending_on_the_same_milestone_twice_is_invalid() -> None:
    twice = [{"milestone": "phase-1"}, {"milestone": "phase-1"}]
    refusals = check_changes(PHASES, update("phase-3", depends_on=twice))
    assert refusals == [
        Refusal(INVALID, "changes.update.0.depends_on", "phase-3 depends on phase-1 twice")
    ]


def test_an_automatic_milestone_must_keep_a_machine_checkable_criterion() -> None:
    refusals = check_changes(PHASES, update("phase-3", trigger="automatic"))
    assert [(r.kind, r.field) for r in refusals] == [(INVALID, "changes.update.0")]
    assert check_changes(PHASES, update("phase-1", trigger="automatic")) == []
    plain = [{"id": "plan", "description": "Plan signed"}]
    refusals = check_changes(
        PHASES, update("phase-1", trigger="automatic", acceptance_criteria=plain)
    )
    assert "without a machine-checkable criterion" in messages(refusals)[0]


def test_only_a_bonus_or_success_fee_has_a_deadline_to_move() -> None:
    refusals = check_changes(PHASES, update("phase-3", deadline="2026-09-30T17:00:00Z"))
    assert [r.field for r in refusals] == ["changes.update.0.deadline"]
    bonus = [*PHASES, MilestoneState("early", "pending", kind="bonus")]
    assert check_changes(bonus, update("early", deadline=None)) == []


def test_a_success_fee_has_no_fee_to_change_and_is_never_partial() -> None:
    milestones = [*PHASES, MilestoneState("savings", "pending", kind="success_fee")]
    refusals = check_changes(milestones, update("savings", fee_minor=1, allow_partial=True))
    assert [r.field for r in refusals] == [
        "changes.update.0.fee_minor",
        "changes.update.0.allow_partial",
    ]


def test_a_new_bonus_is_priced_on_a_standard_milestone_that_stays() -> None:
    def bonus(basis: str) -> dict[str, Any]:
        return {
            "key": "early",
            "name": "Early",
            "kind": "bonus",
            "fee_percent_of": {"milestone": basis, "percent": "5"},
        }

    assert check_changes(PHASES, {"add": [bonus("phase-3")]}) == []
    refusals = check_changes(PHASES, {"add": [bonus("phase-3")], "remove": ["phase-3"]})
    assert messages(refusals) == ["unknown milestone 'phase-3'"]
    milestones = [*PHASES, MilestoneState("other", "pending", kind="bonus")]
    refusals = check_changes(milestones, {"add": [bonus("other")]})
    assert [r.field for r in refusals] == ["changes.add.0.fee_percent_of"]
