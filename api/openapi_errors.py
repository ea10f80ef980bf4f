"""The error statuses an operation can answer, derived from its route rather than kept by hand:

- a bearer token (`Security(BEARER)` in its dependencies) → 401 (with `WWW-Authenticate`) and
  403 (a principal or integration token without the right); a signature scheme → 401;
- a path parameter → 404; a body, a query or header parameter, or a path parameter that is
  a value rather than an id → 422; a body → 400 (malformed) and 413;
- an `Idempotency-Key` header → 400 without it, 422 when it is reused with another body;
- anything but GET → 409 (the resource is in a state that refuses it);
- a database session or the Temporal client among its dependencies → 503 (with `Retry-After`);
- any error status the route declares itself, and the few in `UNDERIVABLE`.

Each is documented with the one `Problem` schema and an example.
"""

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from fastapi.dependencies.models import Dependant
from fastapi.routing import RouteContext

from api.deps import get_caller, get_session, get_temporal
from api.problems import AUTHENTICATE, MEDIA_TYPE

IDEMPOTENCY_KEY = "Idempotency-Key"


class ErrorStatus(NamedTuple):
    """An error status's component: its name, what it means, and an example problem."""

    name: str
    description: str
    slug: str
    title: str
    detail: str


ERRORS: dict[int, ErrorStatus] = {
    400: ErrorStatus(
        "BadRequest",
        "Malformed: the body is not JSON, or a header is missing or too long.",
        "malformed-json",
        "Malformed JSON",
        "The request body is not valid JSON.",
    ),
    401: ErrorStatus(
        "Unauthenticated",
        "No credential, or one that is not recognised.",
        "unauthenticated",
        "Unauthenticated",
        "Send 'Authorization: Bearer <token>'.",
    ),
    403: ErrorStatus(
        "Forbidden",
        "The credential is valid but does not allow this.",
        "forbidden",
        "Forbidden",
        "This needs the admin token.",
    ),
    404: ErrorStatus(
        "NotFound",
        "No such resource (or none this caller may see).",
        "not-found",
        "Engagement not found",
        "No engagement with id 'eng_unknown'.",
    ),
    409: ErrorStatus(
        "Conflict",
        "The resource's state refuses this request; `type` names the rule.",
        "run-closed",
        "Run closed",
        "The run has already ended; nothing was changed.",
    ),
    410: ErrorStatus(
        "Gone",
        "The resource existed and was deactivated.",
        "source-deactivated",
        "Source deactivated",
        "This source was deleted; it accepts no deliveries.",
    ),
    413: ErrorStatus(
        "TooLarge",
        "The body (or an uploaded file) is over its limit; nothing was changed.",
        "body-too-large",
        "Request body too large",
        "The request body exceeds the 1048576-byte limit; nothing was changed.",
    ),
    415: ErrorStatus(
        "UnsupportedMediaType",
        "The body's Content-Type is not one this operation reads.",
        "unsupported-media-type",
        "Unsupported media type",
        "Send application/json, application/x-ndjson or text/csv.",
    ),
    422: ErrorStatus(
        "Invalid",
        "The request is well formed but breaks a rule; `errors[]` names the fields.",
        "validation-error",
        "Invalid request",
        "name: Field required",
    ),
    503: ErrorStatus(
        "Unavailable",
        "The database or Temporal cannot be reached; nothing was changed. Retry later.",
        "temporal-unavailable",
        "Service unavailable",
        "Temporal cannot be reached right now; anything recorded is kept. Retry later.",
    ),
}
HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "The scheme to authenticate with (RFC 9110 §11.6.1).",
            "required": True,
            "schema": {"type": "string", "examples": [AUTHENTICATE]},
        }
    },
    503: {
        "Retry-After": {
            "description": "Seconds to wait before retrying the same request.",
            "required": True,
            "schema": {"type": "string", "pattern": "^[0-9]+$", "examples": ["5"]},
        }
    },
}
# What the route cannot tell: statuses a service raises for an operation no rule above covers.
UNDERIVABLE: dict[tuple[str, str], set[int]] = {
    ("GET", "/v1/runs/{run_id}/certificate.pdf"): {409},  # no-certificate: not accepted yet
    ("POST", "/v1/hooks/{source_id}"): {410},  # source-deactivated
    ("POST", "/v1/engagements/{engagement_id}/encounters"): {415},  # media type not parsed
}
# Operations that answer an error with their own body, not problem+json.
OWN_BODIES = {("GET", "/healthz"): {503}}


def error_response(status: int) -> dict[str, Any]:
    error = ERRORS[status]
    example = {
        "type": f"urn:tollgate:problem:{error.slug}",
        "title": error.title,
        "status": status,
        "detail": error.detail,
    }
    response: dict[str, Any] = {
        "description": error.description,
        "content": {
            MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}, "example": example}
        },
    }
    if status in HEADERS:
        response["headers"] = HEADERS[status]
    return response


def document_errors(method: str, path: str, operation: dict[str, Any], route: RouteContext) -> None:
    responses = operation["responses"]
    for key in [key for key in responses if key[0] in "45"]:
        if not key.isdigit():  # "4XX" / "5XX": replaced by the statuses themselves
            del responses[key]
    statuses = error_statuses(method, path, operation, route)
    own = OWN_BODIES.get((method, path), set())
    for status in sorted(statuses):
        declared = responses.get(str(status), {})
        if status in own:
            success = next(v for k, v in responses.items() if k.startswith("2"))
            responses[str(status)] = {**success, **declared}
        elif declared.get("description"):  # the route says what this status means for it
            responses[str(status)] = {**error_response(status), **declared}
        else:
            responses[str(status)] = {"$ref": f"#/components/responses/{ERRORS[status].name}"}


def error_statuses(
    method: str, path: str, operation: dict[str, Any], route: RouteContext
) -> set[int]:
    """The error statuses this operation can answer (see the module's docstring)."""
    calls = set(_calls(route.dependant))
    parameters = operation.get("parameters", [])
    body = "requestBody" in operation
    statuses = {int(k) for k in operation["responses"] if k.isdigit() and int(k) >= 400}
    statuses |= UNDERIVABLE.get((method, path), set())
    if operation.get("security"):
        statuses.add(401)
    if get_caller in calls:
        statuses.add(403)
    if any(p["in"] == "path" for p in parameters):
        statuses.add(404)
    if body or any(_validated(p) for p in parameters):
        statuses.add(422)
    if body:
        statuses |= {400, 413}
    if any(is_idempotency_key(p) for p in parameters):
        statuses |= {400, 422}
    if method != "GET":
        statuses.add(409)
    if calls & {get_session, get_temporal}:
        statuses.add(503)
    return statuses


def _validated(parameter: dict[str, Any]) -> bool:
    """Whether a value can be refused: any query or header parameter (types, bounds), a path
    value (a period, say) or a constrained path parameter; an id (``*_id``) in a path only
    names something or nothing (404)."""
    if parameter["in"] != "path" or not parameter["name"].endswith("_id"):
        return True
    return bool(set(parameter.get("schema", {})) - {"type", "title", "description"})


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    pending = [dependant]
    while pending:
        current = pending.pop()
        if current.call is not None:
            yield current.call
        pending += current.dependencies


def is_idempotency_key(parameter: dict[str, Any]) -> bool:
    return parameter["in"] == "header" and parameter["name"].lower() == IDEMPOTENCY_KEY.lower()
