"""How the commands print: rich tables for people, JSON for scripts."""

import json
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console(highlight=False)


def print_json(data: Any) -> None:
    """Plain JSON on stdout, one document, nothing else: what ``jq`` expects."""
    print(json.dumps(data, indent=2, ensure_ascii=False))


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> Table:
    grid = Table(title=title, title_justify="left", show_lines=False)
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*("" if cell is None else str(cell) for cell in row))
    return grid


def age(at: str | None, now: datetime | None = None) -> str:
    """How long ago (or in how long) an RFC 3339 time is, in the largest whole unit."""
    if not at:
        return ""
    moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    span = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if span >= size:
            text = f"{int(span // size)}{unit}"
            break
    else:
        text = f"{int(span)}s"
    return f"{text} ago" if seconds >= 0 else f"in {text}"
