"""One admin's client of the API (``tollgate_client.Tollgate``); a refusal is printed plainly
and ends the command."""

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import httpx
import typer
from pydantic import BaseModel

from api.models import Page
from config import Settings
from tollgate_client import ProblemError, Tollgate
from tollgate_client.calls import Call

T = TypeVar("T")
Item = TypeVar("Item", bound=BaseModel)


class Api(Tollgate):
    """``Tollgate`` for a command: the URL and admin token from the settings; a refusal or an
    unreachable API ends the command with a sentence on stderr, never a traceback."""

    def __init__(self, settings: Settings | None = None) -> None:
        settings = settings or Settings()
        token = settings.admin_token or _dev_token(Path(settings.data_dir))
        if not token:
            fail("no admin token: set TOLLGATE_ADMIN_TOKEN")
        super().__init__(settings.api_url or settings.public_url, token)

    def send(self, call: Call[T]) -> T:
        try:
            return super().send(call)
        except ProblemError as error:
            fail(_refusal(error))
        except httpx.HTTPError as exc:
            fail(
                f"cannot reach the Tollgate API at {self.base_url} ({type(exc).__name__}: {exc}); "
                "is it running? Set TOLLGATE_API_URL to point elsewhere."
            )

    def collect(
        self, list_call: Callable[..., Page[Item]], limit: int = sys.maxsize, **params: Any
    ) -> tuple[list[Item], str | None]:
        """Up to ``limit`` items (default: all) of a list, with the cursor to go on from."""
        pages = list(self.pages(list_call, limit=limit, **params))
        return [item for page in pages for item in page.items], pages[-1].next_cursor


def plain(body: BaseModel) -> Any:
    """A model as the JSON the API sent (keys it left out stay out)."""
    return body.model_dump(mode="json", by_alias=True, exclude_unset=True)


def fail(message: str) -> NoReturn:
    print(f"Error: {message}", file=sys.stderr)
    raise typer.Exit(1)


def _refusal(error: ProblemError) -> str:
    """A problem as a sentence or two: status, title, detail, then each field refused."""
    text = str(error)
    for field in error.errors:
        text += f"\n  {field.field}: {field.message}"
    return text


def _dev_token(data: Path) -> str:
    """The admin token ``tollgate dev`` generated, so a newcomer's commands just work."""
    path = data / "admin-token"
    return path.read_text().strip() if path.exists() else ""
