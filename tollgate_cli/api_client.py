"""One admin's HTTP client of the API; a refusal is printed plainly and ends the command."""

import json
import sys
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote

import httpx
import typer

from config import Settings

MAX_PAGE = 200  # the API's largest page


class Api:
    def __init__(self, settings: Settings | None = None) -> None:
        settings = settings or Settings()
        self.base_url = (settings.api_url or settings.public_url).rstrip("/")
        self._token = settings.admin_token or _dev_token(Path(settings.data_dir))

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self._send("GET", path, params=params)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self._send("POST", path, json=body)

    def pages(
        self, path: str, params: dict[str, Any], limit: int = sys.maxsize
    ) -> tuple[list[Any], str | None]:
        """Up to ``limit`` items (default: all) of a list: every list answers in pages
        (``{items, next_cursor}``); returns them with the cursor to go on from."""
        items: list[Any] = []
        cursor = None
        while len(items) < limit:
            page_params = {**params, "limit": min(limit - len(items), MAX_PAGE)}
            if cursor is not None:
                page_params["cursor"] = cursor
            page = self.get(path, page_params)
            items += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        return items, cursor

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        if not self._token:
            fail("no admin token: set TOLLGATE_ADMIN_TOKEN")
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        try:
            response = httpx.request(
                method, self.base_url + path, headers=headers, timeout=30, **kwargs
            )
        except httpx.HTTPError as exc:
            fail(
                f"cannot reach the Tollgate API at {self.base_url} ({type(exc).__name__}: {exc}); "
                "is it running? Set TOLLGATE_API_URL to point elsewhere."
            )
        if response.is_success:
            return response.json()
        fail(_refusal(response))


def segment(value: str) -> str:
    """An id as one path segment (run ids hold ``:``, which a path may carry as it is)."""
    return quote(value, safe=":")


def fail(message: str) -> NoReturn:
    print(f"Error: {message}", file=sys.stderr)
    raise typer.Exit(1)


def _refusal(response: httpx.Response) -> str:
    """A problem+json body as a sentence or two; anything else as its status and first words."""
    try:
        problem = response.json()
    except json.JSONDecodeError:
        problem = None
    if not isinstance(problem, dict) or "title" not in problem:
        return f"HTTP {response.status_code}: {response.text[:300]}"
    text = f"{response.status_code} {problem['title']}: {problem.get('detail', '')}".rstrip(": ")
    for error in problem.get("errors") or []:
        text += f"\n  {error.get('field', '?')}: {error.get('message', '')}"
    return text


def _dev_token(data: Path) -> str:
    """The admin token ``tollgate dev`` generated, so a newcomer's commands just work."""
    path = data / "admin-token"
    return path.read_text().strip() if path.exists() else ""
