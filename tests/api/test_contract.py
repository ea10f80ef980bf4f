"""Contract testing: schemathesis, with every check it has, drives the document the app serves
against the real stack (uvicorn over HTTP, a worker, the Temporal dev server, a migrated
database) with the admin token.

Every check is on: no server error; status codes, media types, headers and bodies as documented
(response-schema conformance included); invalid data refused and valid data accepted; required
headers required; undeclared methods refused with 405 and ``Allow``; authentication enforced;
resources readable after they are created and gone after they are deleted. The run is bounded
(MAX_EXAMPLES per operation, deterministic generation) so CI sends the same cases every time.
Fuzzing writes hundreds of random records, so it gets a database of its own.
"""

import asyncio
import json
import re
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from api.example import platform_migration
from tests.conftest_stack import Example, Stack, serve_stack

MAX_EXAMPLES = 4  # per operation and phase
PHASES = "examples,coverage,fuzzing,stateful"
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
PROBLEM_JSON = "application/problem+json"
# Methods no route declares anywhere; each path must refuse them with a 405 naming its own.
UNDECLARED_METHODS = ("PUT", "PATCH", "DELETE")
# Valid-looking data the API still refuses, for reasons JSON Schema cannot state: an id that
# names nothing (404), a state that refuses the change (409), a rule across fields or against the
# books (422: a currency ISO 4217 does not know, a milestone depending on one not in the
# engagement), a body or header Tollgate bounds more tightly (400, 413), a source the fuzzing
# deleted (410). Never a 5xx: not_a_server_error fails those anyway.
POSITIVE_REFUSALS = ["2xx", "400", "401", "403", "404", "409", "410", "413", "422"]
OUTPUT_CHARS = 20_000  # of schemathesis's report in a failure message


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
    """Each distinct violation once, with the request that shows it, so one run reports all."""

    seen: dict[tuple[str, str], str] = field(default_factory=dict)

    def check(self, label: str, status: int, headers: Mapping[str, Any], body: bytes, how: str):
        for problem in _violations(status, headers, body):
            self.seen.setdefault((label, problem), how)

    def assert_none(self) -> None:
        if self.seen:
            report = "\n".join(
                f"{label}: {problem}\n  {how}" for (label, problem), how in self.seen.items()
            )
            pytest.fail(f"{len(self.seen)} contract violations:\n{report}", pytrace=False)


def _violations(status: int, headers: Mapping[str, Any], body: bytes) -> list[str]:
    if status >= 500:
        return [f"answered {status}"]
    if status < 400:
        return []
    content_type = headers.get("content-type", "")
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
    under review, a run awaiting approval, a piece of evidence, an inbound source, a signed
    trigger URL (and its token), a payer."""
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
    engagement = f"/v1/engagements/{example.engagement['id']}"
    source = await stack.post(
        f"{engagement}/sources",
        {"kind": "alertmanager", "name": "Fuzz", "alertname": "Fuzz", "milestone": "phase-3"},
    )
    assert source.status_code == 201, source.text
    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    url = await stack.post(
        f"{engagement}/trigger-urls", {"milestone": "phase-3", "expires_at": expires}
    )
    assert url.status_code == 201, url.text
    payer = {"id": "payer-fuzz", "name": "Fuzz Mutual", "currency": "USD"}
    payer = await stack.post("/v1/payers", {**payer, "payment_terms": {"duration": "P30D"}})
    assert payer.status_code == 201, payer.text
    return {
        "source_id": source.json()["id"],
        "trigger_url_id": url.json()["id"],
        "token": url.json()["url"].rsplit("/", 1)[1],
        "payer_id": "payer-fuzz",
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


def configuration(ids: dict[str, str]) -> str:
    """schemathesis.toml: every check on, and real ids in most paths (the rest are drawn, so
    unknown ids are tried too); customers get a currency the API knows."""
    lines = ["[checks]", "enabled = true", "", "[checks.positive_data_acceptance]"]
    lines.append(f"expected-statuses = {json.dumps(POSITIVE_REFUSALS)}")
    lines += ["", "[phases.stateful]", "max-steps = 6", ""]
    bindings = {f"path.{name}": name for name in ids} | {"body.currency": "currency"}
    for name, value in [*ids.items(), ("currency", "USD")]:
        lines += [f"[dictionaries.{name}]", f"values = [{json.dumps(value)}]", ""]
    lines.append("[parameters]")
    lines += [
        f'"{key}" = {{ dictionary = "{name}", probability = 0.8 }}'
        for key, name in bindings.items()
    ]
    return "\n".join(lines) + "\n"


@dataclass
class Run:
    returncode: int | None
    output: str
    report: dict[str, Any]


async def schemathesis_run(fuzzed: Fuzzed, directory: Path) -> Run:
    """`schemathesis run` against the served document, as an integrator would run it."""
    config = directory / "schemathesis.toml"
    config.write_text(configuration(fuzzed.ids), encoding="utf-8")
    report = directory / "report.json"
    base_url = str(fuzzed.stack.http.base_url).rstrip("/")
    process = await asyncio.create_subprocess_exec(
        str(SCHEMATHESIS),
        "--config-file", str(config),
        "--no-color",
        "run", f"{base_url}/openapi.json",
        "--checks", "all",
        "--phases", PHASES,
        "--max-examples", str(MAX_EXAMPLES),
        "--generation-deterministic",
        "--no-shrink",
        "--continue-on-failure",
        "--workers", "1",
        "--request-timeout", "30",
        "--header", f"Authorization: Bearer {fuzzed.stack.admin_token}",
        "--report", "json",
        "--report-json-path", str(report),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=directory,
    )  # fmt: skip
    output, _ = await process.communicate()
    written = json.loads(report.read_text()) if report.exists() else {}
    return Run(process.returncode, output.decode(errors="replace"), written)


async def test_schemathesis_with_every_check_on_finds_nothing(
    fuzzed: Fuzzed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    run = await schemathesis_run(fuzzed, tmp_path)
    operations, cases = run.report.get("operations", {}), run.report.get("test_cases", {})
    with capsys.disabled():  # the figures, in the test log
        print(
            f"\nschemathesis on {fuzzed.stack.backend}: {operations.get('tested')} operations, "
            f"{cases.get('generated')} cases, {cases.get('with_failures')} with failures, "
            f"{len(run.report.get('failures', []))} distinct failures, "
            f"{run.report.get('running_time', 0):.0f} s"
        )
    assert run.returncode == 0, run.output[-OUTPUT_CHARS:]
    documented = sum(len(methods) for methods in fuzzed.schema["paths"].values())
    assert operations["tested"] == documented and operations["errored"] == 0
    assert cases["generated"] > 1000 and cases["with_failures"] == 0


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
