"""The OpenAPI document as the API really answers.

FastAPI's own document knows nothing of problem+json: it would list a 422 with its own
`HTTPValidationError` body that Tollgate never sends. `document()` replaces every error entry
with the statuses an operation can really answer, each with the one `Problem` schema, derived
from the route itself (api.openapi_errors says how). An `Idempotency-Key` header is documented
required (unless the operation takes the key another way), and a replay as a 200.

api.openapi_copies writes the copies of it in docs/.
"""

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from api.openapi_errors import (
    ERRORS,
    IDEMPOTENCY_KEY,
    document_errors,
    error_response,
    is_idempotency_key,
)
from api.problems import PROBLEM_SCHEMA
from api.routes.runs import MAX_KEY as MAX_IDEMPOTENCY_KEY


def install(app: FastAPI) -> None:
    """Make `app.openapi()` (and /openapi.json, /docs) serve `document(app)`, built once."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document(app: FastAPI) -> dict[str, Any]:
    schema = copy.deepcopy(FastAPI.openapi(app))
    app.openapi_schema = None
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["Problem"] = PROBLEM_SCHEMA
    components["responses"] = {e.name: error_response(status) for status, e in ERRORS.items()}
    routes = {
        (method, route.path_format): route
        for route in iter_route_contexts(app.routes)
        if isinstance(route.original_route, APIRoute) and route.include_in_schema
        for method in route.methods
    }
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            route = routes[(method.upper(), path)]
            _require_idempotency_key(operation)
            _document_replay(operation)
            document_errors(method.upper(), path, operation, route)
    return schema


def _require_idempotency_key(operation: dict[str, Any]) -> None:
    """FastAPI shows the header optional, because the route answers its absence itself (400).
    It is required unless the operation also takes the key another way (a query parameter)."""
    parameters = operation.get("parameters", [])
    alternative = any(
        p["in"] == "query" and p["name"].replace("_", "-").lower() == IDEMPOTENCY_KEY.lower()
        for p in parameters
    )
    for parameter in filter(is_idempotency_key, parameters):
        parameter["name"] = IDEMPOTENCY_KEY
        if alternative:
            continue
        parameter["required"] = True
        parameter["schema"] = {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY}
        parameter["description"] = (
            f"Required: one key per intended change (at most {MAX_IDEMPOTENCY_KEY} characters). "
            "A retry with the same key and body gets the first answer; the same key with "
            "another body is refused (422)."
        )


def _document_replay(operation: dict[str, Any]) -> None:
    """A retry with the same Idempotency-Key and body gets the first answer again, as a 200."""
    required = any(
        is_idempotency_key(p) and p.get("required") for p in operation.get("parameters", [])
    )
    responses = operation["responses"]
    first = next((responses[s] for s in ("201", "202") if s in responses), None)
    if not required or first is None or "200" in responses:
        return
    responses["200"] = {
        **first,
        "description": "A retry with the same Idempotency-Key and body: the first answer again.",
    }
