"""Posting time entries: idempotent per (engagement, external_id), priced at entry time from the
rate card, booked into an open period, and corrected or deleted only by reversing rows.

A batch is applied row by row (each in its own savepoint): a refused row changes nothing and the
other rows are unaffected; the answer lists every row's outcome.
"""

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.audit import append_event
from db.models import Engagement, Milestone, new_id
from db.time_entries import (
    EntryRowKind,
    PeriodStatus,
    TimeEntry,
    TimeEntryKind,
    TimePeriod,
    TimeTerms,
)
from domain.bounds import MAX_AMOUNT_MINOR
from services.access import load_engagement
from services.callers import Caller
from services.errors import Problem, invalid, not_found
from services.runs import canonical_hash
from services.time_delays import DelayWatch
from services.time_inputs import DelayEntryIn, TimeEntryIn
from services.time_periods import entry_view, lock_period, month_of, next_month, open_sign_off
from services.time_pricing import priced_entry


@dataclass
class RowResult:
    external_id: str | None
    status: str  # created | replayed | refused
    entry: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


@dataclass
class _Context:
    engagement: Engagement
    terms: TimeTerms
    actor: str
    created: list[str] = field(default_factory=list)


def open_time_engagement(session: Session, caller: Caller, engagement_id: str) -> _Context:
    """The engagement, for a caller who may post time (admin or its integration token)."""
    engagement = load_engagement(session, engagement_id, caller)
    if caller.kind == "principal":
        raise Problem(
            403, "forbidden", "Forbidden", "Time is posted with the admin or an integration token."
        )
    # Shared lock: a change order replacing the terms waits for this post, or it for the change.
    terms = session.scalars(
        select(TimeTerms)
        .where(TimeTerms.engagement_id == engagement.id)
        .with_for_update(read=True)
        .execution_options(populate_existing=True)
    ).first()
    if terms is None:
        raise Problem(
            409,
            "not-time-and-materials",
            "No time-and-materials terms",
            f"Engagement {engagement.id} has no time_and_materials terms; it bills no time.",
        )
    if engagement.status == "closed":
        raise Problem(
            409, "engagement-closed", "Engagement closed", f"Engagement {engagement.id} is closed."
        )
    return _Context(engagement, terms, caller.actor)


def post_entries(
    session: Session, caller: Caller, engagement_id: str, rows: list[dict[str, Any]]
) -> list[RowResult]:
    """Apply each row on its own and commit what was accepted, audited as one event."""
    ctx = open_time_engagement(session, caller, engagement_id)
    results = [_apply(session, ctx, row) for row in rows]
    if ctx.created:
        append_event(
            session,
            engagement_id=ctx.engagement.id,
            actor=ctx.actor,
            kind="time_entries_posted",
            data={"entries": ctx.created},
        )
    session.commit()
    return results


def delete_entry(
    session: Session, caller: Caller, engagement_id: str, external_id: str, adjustment: bool
) -> tuple[dict[str, Any], bool]:
    """Reverse an entry (once): the answer is its reversal; ``True`` when it was made now."""
    ctx = open_time_engagement(session, caller, engagement_id)
    original = _entry(session, ctx.engagement.id, external_id)
    if original is None:
        raise not_found("Time entry", external_id)
    done = _reversal(session, original.id)
    if done is not None:
        session.rollback()
        return entry_view(done, original), False
    delays = DelayWatch(session, ctx.engagement, ctx.terms, ctx.actor)
    delays.watch(original.milestone_key, original.entry_kind)
    reversal = _reverse(session, ctx, original, adjustment)
    append_event(
        session,
        engagement_id=ctx.engagement.id,
        actor=ctx.actor,
        kind="time_entry_reversed",
        data={"external_id": external_id, "reversal_id": reversal.id, "period": reversal.period},
    )
    delays.move(reversal.id)
    session.commit()
    return entry_view(reversal, original), True


def _apply(session: Session, ctx: _Context, row: dict[str, Any]) -> RowResult:
    external_id = row.get("external_id") if isinstance(row, dict) else None
    external_id = external_id if isinstance(external_id, str) else None
    for attempt in (1, 2):
        try:
            with session.begin_nested():
                return _post(session, ctx, row)
        except Problem as problem:
            return RowResult(external_id, "refused", error=_error(problem))
        except IntegrityError:  # the same external id posted concurrently: answer as a replay
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _post(session: Session, ctx: _Context, row: dict[str, Any]) -> RowResult:
    delay = isinstance(row, dict) and row.get("kind") == TimeEntryKind.DEPENDENCY_DELAY
    entry = _validated(DelayEntryIn if delay else TimeEntryIn, row)
    body = entry.model_dump(mode="json")
    body_hash = canonical_hash(body)
    existing = _entry(session, ctx.engagement.id, entry.external_id)
    if existing is not None:
        if existing.body_hash != body_hash:
            raise Problem(
                409,
                "time-entry-conflict",
                "Time entry conflict",
                f"Time entry {entry.external_id!r} was posted with a different body; correct it "
                "with a new entry whose correction_of names it, or delete it.",
            )
        return RowResult(entry.external_id, "replayed", _posted_view(session, existing))
    priced = priced_entry(ctx.terms, entry)
    if entry.milestone is not None and not session.scalar(
        select(Milestone.id).where(
            Milestone.engagement_id == ctx.engagement.id, Milestone.key == entry.milestone
        )
    ):
        raise invalid("milestone", f"the engagement has no milestone {entry.milestone!r}")
    delays = DelayWatch(session, ctx.engagement, ctx.terms, ctx.actor)
    delays.watch(entry.milestone, priced["entry_kind"])
    if entry.correction_of is not None:
        original = _entry(session, ctx.engagement.id, entry.correction_of)
        if original is None:
            raise invalid("correction_of", f"no time entry {entry.correction_of!r} to correct")
        if original.entry_kind != priced["entry_kind"]:
            raise invalid(
                "correction_of",
                f"time entry {entry.correction_of!r} is a {original.entry_kind} entry; "
                f"correct it with one of the same kind",
            )
        if _reversal(session, original.id) is not None:
            raise Problem(
                409,
                "time-entry-reversed",
                "Time entry already reversed",
                f"Time entry {entry.correction_of!r} was already corrected or deleted.",
            )
        delays.watch(original.milestone_key, original.entry_kind)
        _reverse(session, ctx, original, entry.adjustment)
    period = _booking_period(session, ctx.engagement.id, month_of(entry.date), entry.adjustment)
    amount = priced["amount_minor"]
    if period.entered_minor + amount > MAX_AMOUNT_MINOR:
        field_ = "business_days" if delay else "hours"
        raise invalid(field_, f"period {period.period} would bill more than {MAX_AMOUNT_MINOR}")
    period.entered_minor += amount
    row_ = TimeEntry(
        id=new_id("te"),
        engagement_id=ctx.engagement.id,
        external_id=entry.external_id,
        kind=EntryRowKind.ENTRY,
        work_date=entry.date,
        period=period.period,
        description=entry.description,
        milestone_key=entry.milestone,
        adjustment=entry.adjustment,
        body_hash=body_hash,
        body=body,
        actor=ctx.actor,
        **priced,
    )
    session.add(row_)
    session.flush()
    delays.move(row_.id)
    ctx.created.append(entry.external_id)
    return RowResult(entry.external_id, "created", _posted_view(session, row_))


def _validated(model: type[TimeEntryIn] | type[DelayEntryIn], row: Any) -> Any:
    try:
        return model.model_validate(row)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        raise Problem(422, "validation-error", "Invalid request", detail, errors) from None


def _reverse(session: Session, ctx: _Context, original: TimeEntry, adjustment: bool) -> TimeEntry:
    period = _booking_period(session, ctx.engagement.id, original.period, adjustment)
    reversal = TimeEntry(
        id=new_id("te"),
        engagement_id=ctx.engagement.id,
        external_id=None,
        kind=EntryRowKind.REVERSAL,
        reverses_id=original.id,
        person=original.person,
        role=original.role,
        work_date=original.work_date,
        period=period.period,
        hours=str(-Decimal(original.hours) + 0),  # never "-0"
        rate_minor=original.rate_minor,
        amount_minor=-original.amount_minor,
        description=f"reverses {original.external_id}",
        milestone_key=original.milestone_key,
        adjustment=period.period != original.period,
        actor=ctx.actor,
        entry_kind=original.entry_kind,
        caused_by=original.caused_by,
        business_days=-original.business_days if original.business_days is not None else None,
    )
    session.add(reversal)
    session.flush()
    return reversal


def _booking_period(
    session: Session, engagement_id: str, month: str, adjustment: bool
) -> TimePeriod:
    """The period ``month`` (locked) if open; else, for an adjustment, the next open one."""
    period = lock_period(session, engagement_id, month)
    if _takes_entries(session, period):
        return period
    if not adjustment:
        if period.status == PeriodStatus.OPEN:
            raise Problem(
                409,
                "period-awaiting-sign-off",
                "Period awaiting sign-off",
                f"Period {month}'s timesheet awaits sign-off ({period.sign_off_run_id}); post "
                "the entry with adjustment: true to book it into the next open period.",
            )
        raise Problem(
            409,
            "period-closed",
            "Period closed",
            f"Period {month} is closed; post the entry with adjustment: true to book it into "
            "the next open period.",
        )
    while not _takes_entries(session, period):
        period = lock_period(session, engagement_id, next_month(period.period))
    return period


def _takes_entries(session: Session, period: TimePeriod) -> bool:
    """Open, and not awaiting its timesheet's sign-off."""
    return period.status == PeriodStatus.OPEN and open_sign_off(session, period) is None


def _entry(session: Session, engagement_id: str, external_id: str) -> TimeEntry | None:
    return session.scalar(
        select(TimeEntry).where(
            TimeEntry.engagement_id == engagement_id, TimeEntry.external_id == external_id
        )
    )


def _reversal(session: Session, entry_id: str) -> TimeEntry | None:
    return session.scalar(select(TimeEntry).where(TimeEntry.reverses_id == entry_id))


def _posted_view(session: Session, entry: TimeEntry) -> dict[str, Any]:
    """What posting answered: the entry and, for a correction, the reversal it made."""
    view = entry_view(entry)
    correction_of = (entry.body or {}).get("correction_of")
    if correction_of is not None:
        original = _entry(session, entry.engagement_id, correction_of)
        reversal = _reversal(session, original.id) if original is not None else None
        view["reversal"] = entry_view(reversal, original) if reversal and original else None
    return view


def _error(problem: Problem) -> dict[str, Any]:
    error: dict[str, Any] = {
        "status": problem.status,
        "type": f"urn:tollgate:problem:{problem.slug}",
        "title": problem.title,
        "detail": problem.detail,
    }
    if problem.errors:
        error["errors"] = problem.errors
    return error
