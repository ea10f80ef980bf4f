"""Reading an encounter upload: one JSON object, NDJSON or CSV, into rows; a row that cannot
be read becomes its refusal at once. Bounded: at most MAX_ROWS rows, MAX_UPLOAD_BYTES bytes
(``api.app.RequestBodyGuard`` enforces the bytes for the upload path)."""

import csv
import io
import json
import re
from dataclasses import dataclass
from typing import Any

from services.errors import Problem

MAX_ROWS = 10_000
# 10,000 rows with every field at its longest (about 330 bytes as NDJSON) fit in 4 MiB.
MAX_UPLOAD_BYTES = 4 * 1024 * 1024
CSV_COLUMNS = (
    "encounter_id",
    "procedure_code",
    "modifiers",
    "units",
    "service_date",
    "patient_ref",
)
_DIGITS = re.compile(r"[0-9]{1,6}")


@dataclass
class RowResult:
    row: int  # 1-based: the record's position in the upload (CSV: after the header)
    encounter_id: str | None
    status: int  # 201 accepted, 409 duplicate, 422 refused
    amount_minor: int | None = None
    error: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "row": self.row,
            "encounter_id": self.encounter_id,
            "status": self.status,
        }
        if self.amount_minor is not None:
            body["amount_minor"] = self.amount_minor
        if self.error is not None:
            body["error"] = self.error
        return body


def refused(
    row: int, encounter_id: str | None, status: int, slug: str, detail: str, **extra: Any
) -> RowResult:
    return RowResult(row, encounter_id, status, error={"type": slug, "detail": detail, **extra})


# A raw row as parsed (a dict of fields), or a refusal already (it could not be parsed).
Raw = dict[str, Any] | RowResult


def parse_json(body: bytes) -> list[Raw]:
    """A single encounter as a JSON object."""
    value = _json(body)
    if not isinstance(value, dict):
        raise Problem(422, "validation-error", "Invalid request", "Send one encounter object.")
    return [value]


def parse_ndjson(body: bytes) -> list[Raw]:
    """One JSON object per line; blank lines are skipped and do not count as rows."""
    rows: list[Raw] = []
    for line in _text(body).splitlines():
        if not line.strip():
            continue
        _check_count(len(rows) + 1)
        try:
            value = _json(line.encode())
        except Problem as problem:
            rows.append(refused(len(rows) + 1, None, 422, "malformed-json", problem.detail))
            continue
        if not isinstance(value, dict):
            detail = "each line is one JSON object"
            rows.append(refused(len(rows) + 1, None, 422, "validation-error", detail))
        else:
            rows.append(value)
    return rows


def parse_csv(body: bytes) -> list[Raw]:
    """A header naming the columns (``encounter_id``, ``procedure_code``, ``service_date`` at
    least), then one encounter per line; ``modifiers`` are separated by spaces ("26 59")."""
    reader = csv.reader(io.StringIO(_text(body), newline=""))
    header = next(reader, None)
    if header is None:
        raise Problem(422, "validation-error", "Invalid request", "The CSV upload is empty.")
    header = [h.strip() for h in header]
    unknown = [h for h in header if h not in CSV_COLUMNS]
    missing = [c for c in ("encounter_id", "procedure_code", "service_date") if c not in header]
    if unknown or missing or len(set(header)) != len(header):
        raise Problem(
            422,
            "validation-error",
            "Invalid CSV header",
            f"The header names each of {', '.join(CSV_COLUMNS)} at most once and "
            f"encounter_id, procedure_code and service_date at least "
            f"(unknown: {unknown or 'none'}, missing: {missing or 'none'}).",
        )
    rows: list[Raw] = []
    for cells in reader:
        if not any(c.strip() for c in cells):
            continue
        _check_count(len(rows) + 1)
        if len(cells) != len(header):
            detail = f"this line has {len(cells)} fields; the header names {len(header)}"
            rows.append(refused(len(rows) + 1, None, 422, "validation-error", detail))
            continue
        rows.append(_csv_row(dict(zip(header, cells, strict=True))))
    return rows


def _csv_row(cells: dict[str, str]) -> dict[str, Any]:
    row: dict[str, Any] = {k: v.strip() for k, v in cells.items() if v.strip()}
    if "modifiers" in row:
        row["modifiers"] = row["modifiers"].split()
    if "units" in row and _DIGITS.fullmatch(row["units"]):
        row["units"] = int(row["units"])
    return row


def _check_count(n: int) -> None:
    if n > MAX_ROWS:
        raise Problem(
            413,
            "too-many-rows",
            "Too many rows",
            f"An upload holds at most {MAX_ROWS:,} encounters; split it. Nothing was recorded.",
        )


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Problem(
            400, "malformed-body", "Malformed body", "The upload is not UTF-8 text."
        ) from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _json(body: bytes) -> Any:
    try:
        # Decimals, never floats: no field of an encounter is fractional, so they are refused.
        return json.loads(body, parse_float=str, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise Problem(400, "malformed-json", "Malformed JSON", f"Not valid JSON: {exc}") from None
