"""Contract fuzzing: schemathesis drives the app's own OpenAPI document against the real stack
(uvicorn over HTTP, a worker, the Temporal dev server, a migrated database) with the admin token.

Whatever it sends, valid or not, the API answers without a 5xx and every error is RFC 9457
problem+json. The run is bounded (EXAMPLES_PER_OPERATION) and derandomized, so CI sends the same
cases every time. Fuzzing writes hundreds of random records, so it gets a database of its own.
"""

import asyncio
import json
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, GenerationMode
from temporalio.testing import WorkflowEnvironment

from api.example import platform_migration
from tests.conftest_stack import Example, Stack, serve_stack

# Drawn per operation from three kinds of case (see `_cases`): 29 operations x 12, so about 350
# requests on each database.
EXAMPLES_PER_OPERATION = 12
PROBLEM_JSON = "application/problem+json"
# Methods no route declares anywhere; each path must refuse them with a 405 naming its own.
UNDECLARED_METHODS = ("PUT", "PATCH", "DELETE")
REPRODUCTION_CHARS = 600  # of each failure's curl command in the report


@dataclass
class Fuzzed:
    stack: Stack
    ids: dict[str, str]  # a real id for each kind of path parameter
    schema: dict[str, Any]  # the OpenAPI document the app serves

    def paths(self) -> dict[str, str]:
        """Every documented path, its parameters filled with real ids (or an unknown one)."""
        return {
            template: re.sub(r"\{(\w+)\}", lambda p: self.ids.get(p[1], "unknown"), template)
            for template in self.schema["paths"]
        }


@dataclass
class Findings:
    """Each distinct violation once, with a request that reproduces it, so one run reports all."""

    seen: dict[tuple[str, str], str] = field(default_factory=dict)

    def check(self, label: str, status: int, headers: Mapping[str, Any], body: bytes, how: str):
        for problem in _violations(status, headers, body):
            self.seen.setdefault((label, problem), how)

    def report(self) -> str:
        return "\n".join(
            f"{label}: {problem}\n  {how[:REPRODUCTION_CHARS]}"
            for (label, problem), how in self.seen.items()
        )

    def assert_none(self) -> None:
        if self.seen:
            pytest.fail(f"{len(self.seen)} contract violations:\n{self.report()}", pytrace=False)


def _violations(status: int, headers: Mapping[str, Any], body: bytes) -> list[str]:
    if status >= 500:
        return [f"answered {status}"]
    if status < 400:
        return []
    content_type = headers.get("content-type", "")
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    if not content_type.startswith(PROBLEM_JSON):
        return [f"{status} sent as {content_type!r}, not {PROBLEM_JSON}"]
    try:
        problem = json.loads(body)
    except ValueError:
        return [f"{status} with a body that is not JSON"]
    missing = {"type", "title", "status", "detail"} - problem.keys()
    if missing or problem["status"] != status:
        return [f"{status} with a malformed problem: {problem}"]
    return []


async def seed(stack: Stack) -> dict[str, str]:
    """The ids fuzzing puts in paths: a billed, finalized and credited invoice, a change order
    under review, a run awaiting approval, a piece of evidence."""
    names = ("lead", "client", "lead_backup", "client_backup")
    people = {name: await stack.principal(name) for name in names}
    customer = await stack.post("/v1/customers", {"name": "Fuzz Corp", "currency": "USD"})
    assert customer.status_code == 201, customer.text
    body = platform_migration(customer.json()["id"], *(people[n]["id"] for n in names))
    engagement = await stack.post("/v1/engagements", body)
    assert engagement.status_code == 201, engagement.text
    example = Example(stack, people, customer.json(), engagement.json())
    evidence = await example.upload()

    billed = await example.trigger("phase-1", {"source": "fuzz", "evidence_ids": [evidence["id"]]})
    assert billed.status_code == 202, billed.text
    run_id = billed.json()["run_id"]
    await example.wait_for_stage(run_id, "awaiting_approval")
    for role, person in (("delivery_lead", "lead"), ("client_ap", "client")):
        assert (await example.decide(run_id, role, person)).status_code == 202
    invoice_id = (await example.wait_for_stage(run_id, "billed"))["invoice_id"]
    final = await stack.post(f"/v1/invoices/{invoice_id}/finalize", None)
    assert final.status_code == 200, final.text
    line = next(line for line in final.json()["lines"] if line["kind"] == "milestone")
    note = await stack.post(
        f"/v1/invoices/{invoice_id}/credit-notes",
        {"reason": "Fuzzing", "lines": [{"invoice_line_id": line["id"], "amount_minor": 1}]},
        headers={"Idempotency-Key": "fuzz"},
    )
    assert note.status_code == 201, note.text
    order = await stack.post(
        f"/v1/engagements/{example.engagement['id']}/change-orders",
        {"reason": "Fuzzing", "changes": {"update": [{"milestone": "phase-3", "fee_minor": 1}]}},
    )
    assert order.status_code == 202, order.text
    waiting = await example.trigger("phase-2")
    assert waiting.status_code == 202, waiting.text
    return {
        "customer_id": example.customer["id"],
        "engagement_id": example.engagement["id"],
        "milestone_id": example.milestone("phase-2"),
        "run_id": waiting.json()["run_id"],
        "evidence_id": evidence["id"],
        "invoice_id": invoice_id,
        "credit_note_id": note.json()["id"],
        "change_order_id": order.json()["id"],
    }


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
async def fuzzed(
    request: pytest.FixtureRequest,
    dev_server: WorkflowEnvironment,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Fuzzed]:
    directory = tmp_path_factory.mktemp(f"contract-{request.param}")
    async with serve_stack(request.param, dev_server, directory) as stack:
        ids = await seed(stack)
        schema = (await stack.http.get("/openapi.json")).json()
        yield Fuzzed(stack, ids, schema)


def _cases(operation: APIOperation, ids: dict[str, str]) -> st.SearchStrategy[Case]:
    """Valid requests on real ids and on random ones, and invalid requests on real ids."""
    real = {p.name: ids[p.name] for p in operation.path_parameters if p.name in ids}
    return st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE, path_parameters=real).map(_known_currency),
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=real),
    )


def _known_currency(case: Case) -> Case:
    """The document allows any string as a currency and the app knows ISO 4217's: without a
    real code, no generated customer would get past validation into the database."""
    if isinstance(case.body, dict) and "currency" in case.body:
        case.body = {**case.body, "currency": "USD"}
    return case


def fuzz(base_url: str, token: str, ids: dict[str, str], document: dict[str, Any]) -> Findings:
    """Blocking, so it runs in a thread: the server it calls lives on the test's event loop."""
    schema = schemathesis.openapi.from_dict(document)
    findings = Findings()
    auth = {"Authorization": f"Bearer {token}"}
    session = requests.Session()
    settings = hypothesis.settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,  # the same cases on every run
        database=None,
        deadline=None,
        phases=[Phase.generate],  # report every violation as found; no shrinking over HTTP
        suppress_health_check=list(HealthCheck),
    )
    for operation in schema.get_all_operations():

        @settings
        @hypothesis.given(case=_cases(operation.ok(), ids))
        def send(case: Case) -> None:
            response = case.call(base_url=base_url, session=session, headers=auth, timeout=30)
            how = case.as_curl_command(base_url=base_url)
            findings.check(
                case.operation.label, response.status_code, response.headers, response.content, how
            )

        send()
    return findings


async def test_no_generated_request_gets_a_server_error_and_every_error_is_problem_json(
    fuzzed: Fuzzed,
):
    base_url = str(fuzzed.stack.http.base_url).rstrip("/")
    token = fuzzed.stack.admin_token
    findings = await asyncio.to_thread(fuzz, base_url, token, fuzzed.ids, fuzzed.schema)
    findings.assert_none()


async def test_every_path_refuses_an_undeclared_method_with_a_405_naming_the_allowed_ones(
    fuzzed: Fuzzed,
):
    findings = Findings()
    for template, path in fuzzed.paths().items():
        allowed = {method.upper() for method in fuzzed.schema["paths"][template]}
        for method in (m for m in UNDECLARED_METHODS if m not in allowed):
            response = await fuzzed.stack.http.request(method, path, headers=fuzzed.stack.auth())
            label = f"{method} {template}"
            findings.check(label, response.status_code, response.headers, response.content, path)
            assert response.status_code == 405, f"{label}: {response.status_code}"
            named = {m.strip() for m in response.headers.get("allow", "").split(",") if m.strip()}
            assert named == allowed, f"{label}: Allow {response.headers.get('allow')!r}"
    findings.assert_none()


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-token", "Basic YWRtaW46YWRtaW4=", "Bearer"],
    ids=["no header", "unknown token", "another scheme", "no token after the scheme"],
)
async def test_every_operation_that_needs_a_token_answers_without_one_with_a_bearer_challenge(
    fuzzed: Fuzzed, authorization: str | None
):
    findings = Findings()
    headers = {} if authorization is None else {"Authorization": authorization}
    protected = [
        (method.upper(), template, path)
        for template, path in fuzzed.paths().items()
        for method, operation in fuzzed.schema["paths"][template].items()
        if operation.get("security")
    ]
    for method, template, path in protected:
        response = await fuzzed.stack.http.request(method, path, headers=headers)
        label = f"{method} {template}"
        findings.check(label, response.status_code, response.headers, response.content, path)
        assert response.status_code == 401, f"{label}: {response.status_code} {response.text}"
        challenge = response.headers.get("www-authenticate", "")
        assert challenge.lower().startswith("bearer"), f"{label}: WWW-Authenticate {challenge!r}"
    findings.assert_none()


async def test_the_document_says_every_error_is_problem_json_and_which_operations_need_a_token(
    fuzzed: Fuzzed,
):
    operations = {
        f"{method.upper()} {template}": operation
        for template, methods in fuzzed.schema["paths"].items()
        for method, operation in methods.items()
    }
    for label, operation in operations.items():
        errors = {k: v for k, v in operation["responses"].items() if k[0] in "45"}
        assert set(errors) == {"4XX", "5XX"}, f"{label}: {set(errors)}"
        assert all(set(e["content"]) == {PROBLEM_JSON} for e in errors.values()), label
    open_to_anyone = {
        label for label, operation in operations.items() if "security" not in operation
    }
    # A signed trigger URL carries its credential in the path, which OpenAPI cannot describe.
    assert open_to_anyone == {"GET /healthz", "POST /v1/t/{token}"}
    assert fuzzed.schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
