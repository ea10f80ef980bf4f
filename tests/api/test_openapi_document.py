"""The OpenAPI document says what the API does: each operation's real error statuses, all as
problem+json with one schema; a bearer scheme on every protected operation; Idempotency-Key
required where it is. And the copies committed in docs/ are the document the app serves."""

import ast
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.openapi_copies import DOCUMENT_PATH, GUIDE_PATH, REGENERATE, guide_with_table, rendered
from config import Settings
from tests.api.problems import assert_problem
from tests.conftest import database
from tests.serving import served

ROOT = Path(__file__).resolve().parents[2]
PROBLEM_JSON = "application/problem+json"
PROBLEM_REF = "#/components/schemas/Problem"
# Operations anyone may call: the credential of a signed trigger URL is its path, which OpenAPI
# cannot describe as a scheme; signed webhooks have their own (StandardWebhooks).
OPEN = {"GET /healthz", "POST /v1/t/{token}"}
IDEMPOTENT = {
    "POST /v1/milestones/{milestone_id}/triggers",
    "POST /v1/milestones/{milestone_id}/kpi-reports",
    "POST /v1/invoices/{invoice_id}/credit-notes",
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_app(Settings(database_url="sqlite://")).openapi()


def operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": operation
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }


def resolved(document: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in response:
        return document["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    return response


def errors_of(document: dict[str, Any], operation: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {
        int(status): resolved(document, response)
        for status, response in operation["responses"].items()
        if status[0] in "45"
    }


def test_the_committed_document_is_the_one_the_app_serves(document: dict[str, Any]):
    committed = DOCUMENT_PATH.read_text(encoding="utf-8")
    assert committed == rendered(document), (
        f"docs/openapi.json differs from what the app serves: run {REGENERATE} and commit it"
    )


def test_the_guide_lists_every_operation_as_the_document_does(document: dict[str, Any]):
    guide = GUIDE_PATH.read_text(encoding="utf-8")
    assert guide == guide_with_table(guide, document), (
        f"docs/api.md's operations table differs from the document: run {REGENERATE}"
    )
    for label in operations(document):
        assert f"| `{label}` |" in guide, label


def test_every_error_is_problem_json_with_the_one_problem_schema(document: dict[str, Any]):
    assert "HTTPValidationError" not in json.dumps(document)
    assert set(document["components"]["schemas"]["Problem"]["required"]) == {
        "type",
        "title",
        "status",
        "detail",
    }
    for label, operation in operations(document).items():
        assert not {"4XX", "5XX", "default"} & set(operation["responses"]), label
        errors = errors_of(document, operation)
        if label == "GET /healthz":  # its 503 is its own health report
            assert set(errors) == {503}
            continue
        assert errors, label
        for status, response in errors.items():
            assert set(response["content"]) == {PROBLEM_JSON}, (label, status)
            assert response["content"][PROBLEM_JSON]["schema"] == {"$ref": PROBLEM_REF}
            assert response["description"], (label, status)


def test_every_protected_operation_takes_the_bearer_token_and_says_401_and_403(
    document: dict[str, Any],
):
    bearer = document["components"]["securitySchemes"]["HTTPBearer"]
    assert (bearer["type"], bearer["scheme"]) == ("http", "bearer")
    for label, operation in operations(document).items():
        errors = errors_of(document, operation)
        if label in OPEN:
            assert "security" not in operation, label
            assert 401 not in errors, label
            continue
        assert operation["security"], label
        assert 401 in errors, label
        assert errors[401]["headers"]["WWW-Authenticate"]["required"] is True
        if operation["security"] == [{"HTTPBearer": []}]:
            assert 403 in errors, label
    hook = operations(document)["POST /v1/hooks/{source_id}"]
    assert hook["security"] == [{"StandardWebhooks": []}]


def test_the_idempotency_key_is_required_where_the_api_requires_it_and_a_replay_is_a_200(
    document: dict[str, Any],
):
    for label, operation in operations(document).items():
        keys = [p for p in operation.get("parameters", []) if p["name"] == "Idempotency-Key"]
        if label in IDEMPOTENT:
            (key,) = keys
            assert key["required"] is True and key["in"] == "header", label
            assert key["schema"]["maxLength"] == 255
            assert "200" in operation["responses"], f"{label} documents no replay"
            assert {400, 422} <= set(errors_of(document, operation)), label
        else:
            assert not any(key.get("required") for key in keys), label
    door = operations(document)["POST /v1/t/{token}"]
    assert any(p["name"] == "idempotency_key" for p in door["parameters"])


def test_each_operation_lists_the_statuses_its_route_can_answer(document: dict[str, Any]):
    every = operations(document)

    def statuses(label: str) -> set[int]:
        return set(errors_of(document, every[label]))

    # A body can be malformed, too large or invalid; a path id unknown; Temporal down.
    assert statuses("POST /v1/milestones/{milestone_id}/triggers") == {
        400, 401, 403, 404, 409, 413, 422, 503,
    }  # fmt: skip
    # A list has no id to miss and changes nothing, but its query can be refused.
    assert statuses("GET /v1/customers") == {401, 403, 422, 503}
    # Any string names a customer: an unknown one is a 404, never a 422.
    assert statuses("GET /v1/customers/{customer_id}") == {401, 403, 404, 503}
    # The metrics need neither the database nor Temporal.
    assert statuses("GET /metrics") == {401, 403}
    # A signed delivery: its own scheme, no bearer token to be forbidden by; a deleted source.
    assert statuses("POST /v1/hooks/{source_id}") >= {401, 404, 410, 413}
    assert 403 not in statuses("POST /v1/hooks/{source_id}")
    unavailable = resolved(document, every["GET /v1/runs/{run_id}"]["responses"]["503"])
    assert unavailable["headers"]["Retry-After"]["required"] is True


def raised_problem_types() -> set[str]:
    """Every problem type the code can answer with: the slug of each Problem(...) and
    problem_response(...), each unavailable(what, ...), and the (status, slug, title) tables."""
    slugs: set[str] = set()
    for path in [*ROOT.glob("api/**/*.py"), *ROOT.glob("services/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                literals = [a.value for a in node.args if isinstance(a, ast.Constant)]
                if name in ("Problem", "problem_response") and len(node.args) >= 2:
                    if isinstance(node.args[1], ast.Constant):
                        slugs.add(node.args[1].value)
                elif name == "unavailable" and literals:
                    slugs.add(f"{literals[0]}-unavailable")
            elif isinstance(node, ast.Tuple) and len(node.elts) == 3:
                values = [e.value if isinstance(e, ast.Constant) else None for e in node.elts]
                if isinstance(values[0], int) and 400 <= values[0] < 600:
                    slugs.add(str(values[1]))
    return slugs


def test_every_problem_type_the_code_raises_is_documented_in_the_guide():
    guide = GUIDE_PATH.read_text(encoding="utf-8")
    raised = raised_problem_types()
    assert len(raised) > 40  # the scan still finds them
    undocumented = sorted(slug for slug in raised if f"| `{slug}` |" not in guide)
    assert undocumented == [], f"add these problem types to docs/api.md: {undocumented}"


@pytest.fixture
async def without_link_secret(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """The API on a migrated SQLite database, configured without a link secret (so approval
    links are a 503), and a principal's token."""
    with database("sqlite", tmp_path) as url:
        settings = Settings(database_url=url, admin_token=secrets.token_urlsafe(24), link_secret="")
        async with (
            served(create_app(settings), settings) as base,
            httpx.AsyncClient(base_url=base, timeout=30) as http,
        ):
            admin = {"Authorization": f"Bearer {settings.admin_token}"}
            body = {"name": "Dana", "email": "dana@example.com"}
            principal = await http.post("/v1/principals", json=body, headers=admin)
            assert principal.status_code == 201, principal.text
            yield http, principal.json()["token"]


async def test_the_headers_the_document_promises_are_sent(
    without_link_secret: tuple[httpx.AsyncClient, str],
):
    http, token = without_link_secret
    unauthenticated = await http.get("/v1/me/approvals")
    assert_problem(unauthenticated, 401)
    assert unauthenticated.headers["WWW-Authenticate"].startswith("Bearer")
    unavailable = await http.get("/v1/me/approvals", headers={"Authorization": f"Bearer {token}"})
    assert assert_problem(unavailable, 503)["type"] == "urn:tollgate:problem:links-unavailable"
    assert unavailable.headers["Retry-After"].isdigit()
    refused = await http.delete("/v1/me/approvals", headers={"Authorization": f"Bearer {token}"})
    assert_problem(refused, 405)
    assert refused.headers["Allow"] == "GET"
