"""``tollgate runs list | show | cancel``: find, read and end runs through the API."""

import re
from typing import Annotated, Any

import typer
from rich.console import Group

from api.models import AuditEvent, RunStatus
from domain.money import format_minor
from tollgate_cli.api_client import Api, plain
from tollgate_cli.output import age, console, print_json, table

app = typer.Typer(help="Find, read and cancel runs (milestone runs, close-outs, change orders).")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
SPAN = re.compile(r"^(\d+)([wdhm])$")


def iso_span(text: str) -> str:
    """``3d``, ``12h``, ``30m`` or ``2w`` (or an ISO 8601 duration) as the ISO duration the API
    takes."""
    match = SPAN.fullmatch(text.strip().lower())
    if match is None:
        if text.upper().startswith("P"):
            return text.upper()
        raise typer.BadParameter(f"expected e.g. 3d, 12h, 30m, 2w or P3D, not {text!r}")
    count, unit = int(match[1]), match[2]
    return {"w": f"P{count * 7}D", "d": f"P{count}D", "h": f"PT{count}H", "m": f"PT{count}M"}[unit]


@app.command("list")
def list_runs(
    stage: Annotated[str | None, typer.Option(help="Only runs in this stage.")] = None,
    engagement: Annotated[str | None, typer.Option(help="Only this engagement's runs.")] = None,
    milestone: Annotated[str | None, typer.Option(help="Only this milestone's runs.")] = None,
    older_than: Annotated[
        str | None,
        typer.Option(help="Only runs created longer ago: 3d, 12h, 30m, 2w."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many runs.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Runs, oldest first: e.g. --stage awaiting_approval --older-than 3d."""
    age_span = iso_span(older_than) if older_than else None
    api = Api()
    items, cursor = api.collect(
        api.list_runs,
        limit,
        stage=stage,
        engagement_id=engagement,
        milestone_id=milestone,
        older_than=age_span,
    )
    if as_json:
        print_json({"items": [plain(r) for r in items], "next_cursor": cursor})
        return
    rows = [
        [
            r.run_id,
            r.kind,
            r.stage,
            r.engagement_id,
            age(r.created_at),
            r.outcome_detail or r.outcome,
        ]
        for r in items
    ]
    console.print(table(None, ["run", "kind", "stage", "engagement", "created", "outcome"], rows))
    more = f"; more with --limit {limit * 2}" if cursor else ""
    console.print(f"{len(items)} run(s){more}")


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    audit: Annotated[int, typer.Option(min=0, help="How many audit events to show.")] = 10,
    as_json: JsonOption = False,
) -> None:
    """A run's status, decisions, deadlines and the tail of its audit trail."""
    api = Api()
    run = api.get_run(run_id)
    engagement = run.engagement_id or ""
    trail = list(api.items(api.engagement_audit, engagement)) if engagement else []
    events = [e for e in trail if e.run_id == run_id]
    tail = events[-audit:] if audit else []
    if as_json:
        print_json({"run": plain(run), "audit": [plain(e) for e in tail]})
        return
    currency = api.get_engagement(engagement).currency if engagement else ""
    console.print(Group(*_run_tables(run, currency, tail)))


def _run_tables(run: RunStatus, currency: str, tail: list[AuditEvent]) -> list[Any]:
    amounts = run.amounts.model_dump() if run.amounts else {}
    money = ", ".join(
        f"{name.removesuffix('_minor')} {format_minor(value, currency)} {currency}"
        for name, value in amounts.items()
    )
    facts: list[list[Any]] = [
        ["stage", run.stage],
        ["outcome", " — ".join(x for x in (run.outcome, run.outcome_detail) if x)],
        ["kind", run.kind],
        ["engagement", run.engagement_id],
        ["milestone", run.milestone_id],
        ["pending roles", ", ".join(run.pending_roles)],
        ["escalated roles", ", ".join(run.escalated_roles)],
        ["waiting on", ", ".join(run.waiting_on)],
        ["amounts", money],
        ["invoice", run.invoice_id],
    ]
    decisions = [
        [d.role, d.decision, d.via, d.principal_id, d.at, d.comment] for d in run.decisions
    ]
    deadlines = [[name, at, age(at)] for name, at in run.deadlines.items() if at]
    events = [[e.seq, e.at, e.kind, e.actor] for e in tail]
    return [
        table(f"Run {run.run_id}", ["", ""], [f for f in facts if f[1]]),
        table("Decisions", ["role", "decision", "via", "by", "at", "comment"], decisions),
        table("Deadlines", ["deadline", "at", "when"], deadlines),
        table(f"Audit (last {len(tail)})", ["seq", "at", "event", "actor"], events),
    ]


@app.command()
def cancel(
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    reason: Annotated[str, typer.Option(help="Why; kept in the audit trail.")],
    as_json: JsonOption = False,
) -> None:
    """End a run as cancelled; it releases what it held. Past sign-off the API refuses (409)."""
    run = Api().cancel_run(run_id, reason)
    if as_json:
        print_json(plain(run))
        return
    console.print(f"Run {run.run_id} is {run.stage}: {run.outcome_detail}")
