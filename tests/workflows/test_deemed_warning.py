"""The warning a silent client gets one business day before its silence accepts the run."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from activities.approval import calendar_of
from api.views import run_status_view
from db.models import AuditEvent, Notification
from domain.calendar import subtract_business_days
from tests.workflows.conftest import Harness


def warnings(h: Harness, run_id: str) -> list[Notification]:
    with h.sessions() as session:
        return list(
            session.scalars(
                select(Notification).where(
                    Notification.run_id == run_id, Notification.kind == "deemed_warning"
                )
            )
        )


def warned_at(h: Harness, run_id: str) -> datetime:
    """When the warning was audited, as an aware instant (SQLite stores it naive, in UTC)."""
    with h.sessions() as session:
        at = session.scalars(
            select(AuditEvent.at).where(
                AuditEvent.run_id == run_id, AuditEvent.kind == "deemed_warning_sent"
            )
        ).one()
    return at if at.tzinfo else at.replace(tzinfo=UTC)


async def test_a_silent_client_is_warned_one_business_day_before_it_is_deemed_to_accept(
    harness: Harness,
):
    run = await harness.trigger("phase-1")
    status = await harness.wait_for_stage(run, "awaiting_approval")
    await harness.decide(run, "delivery_lead", "lead")
    deemed_at = datetime.fromisoformat(status.deadlines["deemed_acceptance_at"])
    warning_at = datetime.fromisoformat(run_status_view(status)["deadlines"]["deemed_warning_at"])
    calendar = calendar_of(harness.engagement["approval"]["calendar"])
    assert warning_at == subtract_business_days(deemed_at, 1, calendar)

    await harness.skip(warning_at - await harness.env.get_current_time() - timedelta(minutes=1))
    assert warnings(harness, run.id) == []
    await harness.skip(timedelta(minutes=2))
    for _ in range(100):  # the timer has fired; its notify activity may still be running
        if warnings(harness, run.id):
            break
        await harness.skip(timedelta(seconds=1))

    [warning] = warnings(harness, run.id)
    assert (warning.recipient_id, warning.role) == (harness.people["client"], "client_ap")
    in_new_york = deemed_at.astimezone(ZoneInfo("America/New_York"))
    when = in_new_york.strftime("%a %d %b %Y, %H:%M %Z")
    assert f"If you do nothing, this is deemed accepted on {when}." in warning.body_text
    assert abs(warned_at(harness, run.id) - warning_at) < timedelta(seconds=1)

    result = await harness.finish(run)
    assert result.stage == "billed"
    assert (result.decisions[-1].role, result.decisions[-1].via) == ("client_ap", "deemed")


async def test_a_client_who_approved_before_the_warning_is_not_warned(harness: Harness):
    run = await harness.trigger("phase-1")
    status = await harness.wait_for_stage(run, "awaiting_approval")
    await harness.decide(run, "client_ap", "client")
    warning_at = datetime.fromisoformat(status.deadlines["deemed_warning_at"])
    await harness.skip(warning_at - await harness.env.get_current_time() + timedelta(minutes=1))
    await harness.decide(run, "delivery_lead", "lead")

    result = await harness.finish(run)

    assert result.stage == "billed"
    assert warnings(harness, run.id) == []


async def test_an_engagement_that_turns_the_warning_off_sends_none(harness: Harness):
    harness.engage(approval={**harness.engagement["approval"], "deemed_warning_before": None})
    run = await harness.trigger("phase-1")
    status = await harness.wait_for_stage(run, "awaiting_approval")
    assert status.deadlines["deemed_warning_at"] is None

    result = await harness.finish(run)

    assert [d.via for d in result.decisions] == ["deemed"]
    assert warnings(harness, run.id) == []
