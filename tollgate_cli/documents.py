"""``tollgate documents verify FILE``: whether a PDF someone was sent is one Tollgate issued."""

import hashlib
from pathlib import Path
from typing import Annotated

import httpx
import typer

from api.models import IssuedDocument
from tollgate_cli.api_client import Api, fail, plain
from tollgate_cli.output import console, print_json
from tollgate_client import ProblemError, Tollgate

app = typer.Typer(help="Invoices and credit notes as issued.")


@app.command()
def verify(
    file: Annotated[Path, typer.Argument(help="The PDF to check.", exists=True, dir_okay=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Hash the file and ask the API which document was issued as it; exits 1 when none was
    (the file is not one Tollgate issued, or it was altered since)."""
    sha256 = hashlib.sha256(file.read_bytes()).hexdigest()
    issued = _issued(Api(), sha256)
    if as_json:
        print_json(
            {"issued": True, **plain(issued)} if issued else {"issued": False, "sha256": sha256}
        )
        if issued is None:
            raise typer.Exit(1)
        return
    if issued is None:
        fail(f"{file} (sha256 {sha256}) is not a document Tollgate issued, or it was altered")
    label = issued.kind.replace("_", " ")
    console.print(
        f"{file} is {label} {issued.number} ({issued.document_id}) as issued at "
        f"{issued.issued_at}: sha256 {sha256}."
    )


def _issued(api: Api, sha256: str) -> IssuedDocument | None:
    """The document issued as that file; None on the API's 404 ``document-not-issued``."""
    call = Tollgate.issued_document.describe(api, sha256)
    try:
        return Tollgate.send(api, call)
    except ProblemError as error:
        if error.status == 404:
            return None
        fail(str(error))
    except httpx.HTTPError as exc:
        fail(f"cannot reach the Tollgate API at {api.base_url} ({type(exc).__name__}: {exc})")
