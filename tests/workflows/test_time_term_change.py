"""A change order of T&M terms on the time-skipping server, with real activities on both
databases: the same ChangeOrderApproval workflow applies it as a new engagement version and
reprices the open month; its history is recorded for the replay test."""

from sqlalchemy import select

from db.models import EngagementVersion
from db.time_entries import TimeEntry, TimeTerms
from services.time_entries import post_entries
from tests.workflows.conftest import ADMIN, Harness

TERMS = {
    "rate_card": [{"role": "junior", "rate_minor": 10_000}],
    "period_cap_minor": 500_000,
}
RAISE_JUNIOR = {
    "time_and_materials": {
        "rate_card": [
            {"role": "junior", "rate_minor": 10_000},
            {"role": "junior", "rate_minor": 12_000, "effective_from": "2025-12-01"},
        ]
    }
}


def amounts(h: Harness) -> dict[str, tuple[int, int]]:
    with h.sessions() as session:
        rows = session.scalars(select(TimeEntry).where(TimeEntry.external_id.is_not(None)))
        return {r.external_id: (r.rate_minor, r.amount_minor) for r in rows}


async def test_a_change_order_of_t_and_m_rates_both_roles_approve_reprices_the_open_month(
    harness: Harness,
):
    harness.engage(time_and_materials=TERMS)
    with harness.sessions() as session:
        rows = [
            {"external_id": "n1", "person": "sam", "role": "junior", "date": "2025-11-28",
             "hours": "5"},
            {"external_id": "d1", "person": "sam", "role": "junior", "date": "2025-12-03",
             "hours": "5"},
        ]  # fmt: skip
        assert [r.status for r in post_entries(session, ADMIN, harness.engagement["id"], rows)] == [
            "created",
            "created",
        ]
    order = await harness.propose(RAISE_JUNIOR, "2026 rates")
    await harness.wait_for_stage(order, "awaiting_approval")
    assert amounts(harness)["d1"] == (10_000, 50_000)
    await harness.decide(order, "delivery_lead", "lead")
    await harness.decide(order, "client_ap", "client")

    result = await harness.finish(order)

    assert (result.stage, result.details["version"]) == ("applied", 2)
    # November's entry predates the new rate; December's is repriced.
    assert amounts(harness) == {"n1": (10_000, 50_000), "d1": (12_000, 60_000)}
    with harness.sessions() as session:
        terms = session.get_one(TimeTerms, harness.engagement["id"])
        assert terms.rate_card[-1]["effective_from"] == "2025-12-01"
        assert terms.period_cap_minor == 500_000  # left out of the change: kept
        snapshots = {
            v.version: v.snapshot["time_and_materials"]["rate_card"]
            for v in session.scalars(
                select(EngagementVersion).where(
                    EngagementVersion.engagement_id == harness.engagement["id"]
                )
            )
        }
    assert [len(snapshots[1]), len(snapshots[2])] == [1, 2]
