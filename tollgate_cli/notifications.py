"""``tollgate notifications list | redeliver``: find notices that were not delivered, resend."""

from typing import Annotated

import typer

from tollgate_cli.api_client import Api, plain
from tollgate_cli.output import age, console, print_json, table

app = typer.Typer(help="Notifications (email, webhooks): find the undelivered, redeliver.")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@app.command("list")
def list_notifications(
    status: Annotated[
        str | None, typer.Option(help="pending, delivered or dead (e.g. --status dead).")
    ] = None,
    run: Annotated[str | None, typer.Option(help="Only notices about this run.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many notifications.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Notifications, oldest first."""
    api = Api()
    items, cursor = api.collect(
        api.list_notifications, limit, status=status or None, run_id=run or None
    )
    if as_json:
        print_json({"items": [plain(n) for n in items], "next_cursor": cursor})
        return
    columns = ["id", "kind", "run", "channel", "to", "status", "attempts", "created", "last error"]
    rows = [
        [
            n.id,
            n.kind,
            n.run_id,
            n.channel,
            n.address or n.recipient_id,
            n.status,
            n.attempts,
            age(n.created_at),
            n.last_error,
        ]
        for n in items
    ]
    console.print(table(None, columns, rows))
    more = f"; more with --limit {limit * 2}" if cursor is not None else ""
    console.print(f"{len(items)} notification(s){more}")


@app.command()
def redeliver(
    notification_id: Annotated[int, typer.Argument(help="The notification's id.")],
    as_json: JsonOption = False,
) -> None:
    """Send a dead notification again, with a fresh set of attempts (the API refuses others)."""
    notice = Api().redeliver_notification(notification_id)
    if as_json:
        print_json(plain(notice))
        return
    console.print(f"Notification {notice.id} ({notice.kind}): {notice.delivery}.")
