"""``tollgate audit verify``: check an engagement's hash-chained audit trail."""

from typing import Annotated

import typer

from tollgate_cli.api_client import Api, fail, plain
from tollgate_cli.output import console, print_json

app = typer.Typer(help="The hash-chained audit trail.")


@app.command()
def verify(
    engagement: Annotated[str, typer.Argument(help="The engagement's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Recompute the chain; exits 1 when an event was altered, removed or inserted."""
    check = Api().verify_audit(engagement)
    if as_json:
        print_json(plain(check))
        if not check.ok:
            raise typer.Exit(1)
        return
    if not check.ok:
        fail(
            f"the audit chain of {engagement} is broken at event {check.first_bad_seq} "
            f"({check.events} events)"
        )
    console.print(f"The audit chain of {engagement} verifies: {check.events} events.")
