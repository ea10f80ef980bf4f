"""Change-order sign-off on the time-skipping server, with real activities on SQLite."""

from sqlalchemy import func, select

from db.models import (
    AuditEvent,
    ChangeOrder,
    Engagement,
    EngagementVersion,
    Milestone,
    MilestoneDependency,
)
from tests.workflows.conftest import Harness

RAISE_PHASE_3 = {"update": [{"milestone": "phase-3", "fee_minor": 3_200_000}]}


def audit_kinds(h: Harness, run_id: str) -> list[str]:
    with h.sessions() as session:
        return list(
            session.scalars(
                select(AuditEvent.kind).where(AuditEvent.run_id == run_id).order_by(AuditEvent.seq)
            )
        )


def fees(h: Harness) -> dict[str, int]:
    with h.sessions() as session:
        rows = session.execute(select(Milestone.key, Milestone.fee_minor))
        return {key: fee for key, fee in rows}


def versions(h: Harness) -> list[int]:
    with h.sessions() as session:
        return list(session.scalars(select(EngagementVersion.version).order_by("version")))


def order_of(h: Harness, run_id: str) -> ChangeOrder:
    with h.sessions() as session:
        return session.scalars(select(ChangeOrder).where(ChangeOrder.run_id == run_id)).one()


def snapshot_fee(h: Harness, version: int, key: str) -> int:
    with h.sessions() as session:
        stored = session.get_one(EngagementVersion, (h.engagement["id"], version))
    return next(m["fee_minor"] for m in stored.snapshot["milestones"] if m["key"] == key)


async def test_a_change_order_both_roles_approve_raises_the_fee_as_version_two(harness: Harness):
    order = await harness.propose(RAISE_PHASE_3, "Production cutover needs a second weekend")
    waiting = await harness.wait_for_stage(order, "awaiting_approval")
    assert (waiting.kind, sorted(waiting.pending_roles)) == (
        "change_order",
        ["client_ap", "delivery_lead"],
    )
    assert waiting.deadlines["expire_at"] is not None
    await harness.decide(order, "delivery_lead", "lead")
    await harness.decide(order, "client_ap", "client")

    result = await harness.finish(order)

    assert (result.stage, result.details["status"], result.details["version"]) == (
        "applied",
        "applied",
        2,
    )
    assert fees(harness)["phase-3"] == 3_200_000
    assert versions(harness) == [1, 2]
    assert (snapshot_fee(harness, 1, "phase-3"), snapshot_fee(harness, 2, "phase-3")) == (
        3_000_000,
        3_200_000,
    )
    row = order_of(harness, order.id)
    assert (row.status, row.version, row.base_version) == ("applied", 2, 1)
    assert row.decided_at is not None
    assert audit_kinds(harness, order.id) == [
        "change_order_proposed",
        "stage_changed",
        "decision",
        "decision",
        "change_order_applied",
    ]
    with harness.sessions() as session:
        applied = session.scalars(
            select(AuditEvent).where(AuditEvent.kind == "change_order_applied")
        ).one()
    assert applied.data["version"] == 2
    assert applied.data["updated"][0]["changes"] == {
        "fee_minor": {"old": 3_000_000, "new": 3_200_000}
    }


async def test_a_change_order_nobody_signs_expires_and_changes_nothing(harness: Harness):
    order = await harness.propose(RAISE_PHASE_3)

    result = await harness.finish(order)

    assert (result.stage, result.details["status"], result.details["version"]) == (
        "expired",
        "expired",
        None,
    )
    assert "delivery_lead" in result.outcome_detail
    assert [d.via for d in result.decisions] == ["deemed"]
    assert fees(harness)["phase-3"] == 3_000_000
    assert versions(harness) == [1]
    assert order_of(harness, order.id).status == "expired"
    with harness.sessions() as session:
        assert session.get_one(Engagement, harness.engagement["id"]).version == 1
    kinds = audit_kinds(harness, order.id)
    assert kinds[-1] == "change_order_expired"
    assert "change_order_applied" not in kinds


async def test_a_rejected_change_order_changes_nothing(harness: Harness):
    changes = {
        "add": [{"key": "phase-4", "name": "Hypercare", "fee_minor": 500_000}],
        "remove": ["phase-3"],
    }
    order = await harness.propose(changes)
    await harness.decide(order, "delivery_lead", "lead")
    await harness.decide(order, "client_ap", "client", "reject", "Hypercare is in scope already")

    result = await harness.finish(order)

    assert (result.stage, result.details["status"]) == ("rejected", "rejected")
    assert "Hypercare is in scope already" in result.outcome_detail
    assert sorted(fees(harness)) == ["phase-1", "phase-2", "phase-3"]
    with harness.sessions() as session:
        phase3 = session.get_one(Milestone, harness.milestone_id("phase-3"))
        assert phase3.status == "pending"
    assert versions(harness) == [1]
    assert order_of(harness, order.id).status == "rejected"
    assert audit_kinds(harness, order.id)[-1] == "change_order_rejected"


async def test_an_approved_change_order_adds_and_removes_milestones_keeping_the_rows(
    harness: Harness,
):
    changes = {
        "add": [
            {
                "key": "phase-3b",
                "name": "Production cutover in two waves",
                "fee_minor": 3_500_000,
                "depends_on": [{"milestone": "phase-2"}],
            }
        ],
        "remove": ["phase-3"],
    }
    order = await harness.propose(changes)
    await harness.decide(order, "delivery_lead", "lead")
    await harness.decide(order, "client_ap", "client")

    result = await harness.finish(order)

    assert result.stage == "applied"
    with harness.sessions() as session:
        milestones = {m.key: m for m in session.scalars(select(Milestone))}
        assert milestones["phase-3"].status == "removed"
        assert milestones["phase-3b"].position > milestones["phase-2"].position
        edges = session.execute(
            select(MilestoneDependency.milestone_id, MilestoneDependency.depends_on_id)
        ).all()
    removed = milestones["phase-3"].id
    assert all(removed not in edge for edge in edges)
    assert (milestones["phase-3b"].id, milestones["phase-2"].id) in edges
    with harness.sessions() as session:
        stored = session.get_one(EngagementVersion, (harness.engagement["id"], 2))
    assert [(m["key"], m["status"]) for m in stored.snapshot["milestones"]] == [
        ("phase-1", "pending"),
        ("phase-2", "pending"),
        ("phase-3", "removed"),
        ("phase-3b", "pending"),
    ]


async def test_a_milestone_triggered_after_the_proposal_makes_the_approved_order_conflicted(
    harness: Harness,
):
    order = await harness.propose({"update": [{"milestone": "phase-1", "fee_minor": 2_500_000}]})
    await harness.wait_for_stage(order, "awaiting_approval")
    run = await harness.trigger("phase-1")
    await harness.wait_for_stage(run, "awaiting_approval")
    await harness.decide(order, "delivery_lead", "lead")
    await harness.decide(order, "client_ap", "client")

    result = await harness.finish(order)

    assert (result.stage, result.details["status"]) == ("conflicted", "conflicted")
    assert "phase-1 has an open run" in result.outcome_detail
    assert fees(harness)["phase-1"] == 3_000_000
    assert versions(harness) == [1]
    row = order_of(harness, order.id)
    assert (row.status, row.version) == ("conflicted", None)
    assert audit_kinds(harness, order.id)[-1] == "change_order_conflicted"

    await harness.decide(run, "delivery_lead", "lead")
    await harness.decide(run, "client_ap", "client")
    billed = await harness.finish(run)
    assert billed.amounts is not None
    assert billed.amounts.gross_minor == 3_000_000
    with harness.sessions() as session:
        count = select(func.count()).select_from(ChangeOrder)
        assert session.scalar(count.where(ChangeOrder.status == "proposed")) == 0
