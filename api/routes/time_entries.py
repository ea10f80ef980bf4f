"""Time and materials over HTTP: posting time entries (single or a batch of up to 1,000), reversing
one, and closing or reading a month's billing period. The rules are in ``services.time_entries``
and ``services.time_periods``; the close itself is the ``CloseTimePeriod`` workflow's."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session
from temporalio.service import RPCError

from api.deps import AdminDep, CallerDep, SessionDep, SettingsDep, TemporalDep
from api.links import link
from api.models import (
    PeriodClosing,
    PostedEntry,
    TimeEntriesPosted,
    TimeEntry,
    TimeEntryBatch,
    TimePeriod,
    json_response,
)
from api.problems import Problem, temporal_unreachable
from db.time_entries import PeriodStatus
from db.time_entries import TimePeriod as PeriodRow
from db.types import utcnow
from services.access import load_engagement
from services.callers import Caller
from services.time_entries import delete_entry, open_time_engagement, post_entries
from services.time_inputs import TimeEntryBatchIn
from services.time_periods import (
    check_closable,
    parse_period,
    period_id,
    period_view,
    start_close,
)
from workflows.time_period import ClosePeriodInput

router = APIRouter(prefix="/v1/engagements", tags=["time and materials"])

ENTRY_EXAMPLE = {
    "external_id": "tt-4411",
    "person": "dana@consultancy.example",
    "role": "senior",
    "date": "2025-11-03",
    "hours": "7.5",
    "description": "Cutover rehearsal",
}


@router.post(
    "/{engagement_id}/time-entries",
    status_code=201,
    response_description="One entry, created; or a batch: a result per row.",
    response_model=TimeEntriesPosted,
    response_model_exclude_unset=True,
    responses={
        200: {"model": PostedEntry, "description": "One entry, posted before with this body."}
    },
)
def post_time_entries(
    engagement_id: str,
    response: Response,
    session: SessionDep,
    caller: CallerDep,
    body: Annotated[
        dict[str, Any],
        Body(
            description='One entry, or {"entries": [...]} with up to 1,000 entries.',
            openapi_examples={
                "single": {"value": ENTRY_EXAMPLE},
                "batch": {"value": {"entries": [ENTRY_EXAMPLE]}},
            },
        ),
    ],
) -> PostedEntry | TimeEntryBatch:
    """A single entry answers 201 with the entry (200 when the same body was posted before) or
    its problem. A batch answers 201 with one result per row, in order: ``created``,
    ``replayed`` or ``refused`` with the row's problem; refused rows change nothing and the
    other rows are unaffected."""
    if "entries" not in body:
        (result,) = post_entries(session, caller, engagement_id, [body])
        if result.error is not None:
            e = result.error
            slug = e["type"].rsplit(":", 1)[-1]
            raise Problem(e["status"], slug, e["title"], e["detail"], e.get("errors"))
        response.status_code = 201 if result.status == "created" else 200
        return PostedEntry.model_validate(result.entry)
    try:
        batch = TimeEntryBatchIn.model_validate(body)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        raise Problem(422, "validation-error", "Invalid request", detail, errors) from None
    results = post_entries(session, caller, engagement_id, batch.entries)
    rows = [
        {
            "external_id": r.external_id,
            "status": r.status,
            **({"entry": r.entry} if r.entry is not None else {}),
            **({"error": r.error} if r.error is not None else {}),
        }
        for r in results
    ]
    return TimeEntryBatch.model_validate({"results": rows})


@router.delete("/{engagement_id}/time-entries/{external_id}")
def delete_time_entry(
    engagement_id: str,
    external_id: str,
    session: SessionDep,
    caller: CallerDep,
    adjustment: Annotated[
        bool, Query(description="Book the reversal into the next open period if its own is closed.")
    ] = False,
) -> TimeEntry:
    """Reverse the entry with a negating entry (the entry itself stays). Deleting it again
    answers the same reversal."""
    reversal, _ = delete_entry(session, caller, engagement_id, external_id, adjustment)
    return TimeEntry.model_validate(reversal)


@router.post(
    "/{engagement_id}/time-periods/{period}/close",
    status_code=202,
    response_description="The close is started.",
    response_model=PeriodClosing,
    responses={200: {"model": TimePeriod, "description": "Closed already: the period."}},
)
async def close_time_period(
    engagement_id: str,
    period: str,
    request: Request,
    session: SessionDep,
    caller: AdminDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> PeriodClosing | JSONResponse:
    """Start ``CloseTimePeriod`` for the month (202); a period already closed answers 200 with
    its view and starts nothing."""
    closed = await run_in_threadpool(_check_close, session, caller, engagement_id, period)
    if closed is not None:
        return json_response(TimePeriod.model_validate(closed), 200)
    inp = ClosePeriodInput(engagement_id, period, caller.actor)
    try:
        await start_close(temporal, settings.task_queue, inp)
    except (RPCError, RuntimeError) as exc:
        if isinstance(exc, RuntimeError) and not temporal_unreachable(exc):
            raise
        raise Problem(
            503,
            "temporal-unavailable",
            "Close not started",
            "The period's close could not be started; nothing changed. Retry the request.",
        ) from exc
    return PeriodClosing(
        workflow_id=period_id(engagement_id, period),
        engagement_id=engagement_id,
        period=period,
        status="closing",
        status_url=link(request, "get_time_period", engagement_id=engagement_id, period=period),
    )


@router.get("/{engagement_id}/time-periods/{period}")
def get_time_period(
    engagement_id: str, period: str, session: SessionDep, caller: CallerDep
) -> TimePeriod:
    """The period's entries, hours, amounts, capped amount, status and (once closed) lines."""
    engagement = load_engagement(session, engagement_id, caller)
    return TimePeriod.model_validate(period_view(session, engagement, parse_period(period)))


def _check_close(
    session: Session, caller: Caller, engagement_id: str, period: str
) -> dict[str, Any] | None:
    """Checks before starting the close; the period's view if it is closed already."""
    ctx = open_time_engagement(session, caller, engagement_id)
    parse_period(period)
    check_closable(ctx.engagement, period, utcnow())
    row = session.get(PeriodRow, (engagement_id, period))
    view = None
    if row is not None and row.status == PeriodStatus.CLOSED:
        view = period_view(session, ctx.engagement, period)
    session.rollback()
    return view
