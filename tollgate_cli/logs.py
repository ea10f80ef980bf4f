"""JSON logs for ``tollgate api`` and ``tollgate worker``: one object per line, on stderr.

Every stdlib logger (uvicorn, the Temporal SDK, ours) goes through structlog's formatter. A line
logged inside a workflow or an activity carries its ``run_id`` (the workflow id) and, for ids
that name it (``milestone:<engagement id>:…``), its ``engagement_id``. The worker logs each
activity attempt as it starts and ends (``activities/step_log.py``). ``tollgate dev`` keeps
readable text.
"""

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from activities.step_log import run_fields


def run_ids(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Lift the Temporal SDK's ``temporal_activity`` / ``temporal_workflow`` extras."""
    record = event.get("_record")
    details = getattr(record, "temporal_activity", None) or getattr(
        record, "temporal_workflow", None
    )
    if not isinstance(details, dict) or "workflow_id" not in details:
        return event
    event.update(run_fields(str(details["workflow_id"])))
    for key in ("workflow_type", "activity_type", "attempt"):
        if key in details:
            event[key] = details[key]
    return event


def configure_json_logs(level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Every log line as one JSON object on ``stream`` (default stderr)."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, run_ids],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
