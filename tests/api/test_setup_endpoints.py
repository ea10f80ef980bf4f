"""Principals, customers, engagements, evidence, integration tokens and auth over real HTTP:
every bad input gets a problem+json 4xx and creates nothing."""

import copy
import hashlib
import os
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from api.example import platform_migration
from db.models import Customer, Engagement, Evidence, EvidenceBlob, Milestone, Principal
from tests.api.problems import assert_problem
from tests.conftest_stack import Example, Stack

LIMIT = 64 * 1024  # the stack's evidence_max_bytes


def count(stack: Stack, model: type) -> int:
    with stack.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def counts(stack: Stack, *models: type) -> list[int]:
    return [count(stack, m) for m in models]


def engagement_body(example: Example) -> dict[str, Any]:
    people = [example.people[p]["id"] for p in ("lead", "client", "lead_backup", "client_backup")]
    return platform_migration(example.customer["id"], *people)


async def upload(stack: Stack, content: bytes, token: str | None = None) -> httpx.Response:
    files = {"file": ("proof.bin", content, "application/octet-stream")}
    return await stack.http.post("/v1/evidence", headers=stack.auth(token), files=files)


DROP = object()
M0, M1 = ("milestones", 0), ("milestones", 1)
# (case, path into a valid engagement body, value to put there or DROP, field the 422 names)
INVALID_ENGAGEMENTS: list[tuple[str, tuple, Any, str]] = [
    ("missing name", ("name",), DROP, "name"),
    ("missing fee", (*M0, "fee_minor"), DROP, "milestones.0.fee_minor"),
    ("unknown field", ("colour",), "red", "colour"),
    ("unknown milestone field", (*M1, "price"), 1, "milestones.1.price"),
    ("negative fee", (*M0, "fee_minor"), -1, "milestones.0.fee_minor"),
    ("float fee", (*M0, "fee_minor"), 1.5, "milestones.0.fee_minor"),
    ("string fee", (*M0, "fee_minor"), "100", "milestones.0.fee_minor"),
    ("bool fee", (*M0, "fee_minor"), True, "milestones.0.fee_minor"),
    ("fee over bigint", (*M0, "fee_minor"), 2**63, "milestones.0.fee_minor"),
    ("percent 101", ("retention", "percent"), "101", "retention.percent"),
    ("percent -1", ("retention", "percent"), "-1", "retention.percent"),
    ("percent number", ("retention", "percent"), 10, "retention.percent"),
    ("percent too long", ("retention", "percent"), "10." + "0" * 14, "retention.percent"),
    ("currency ZZZ", ("currency",), "ZZZ", "currency"),
    ("currency usd", ("currency",), "usd", "currency"),
    ("no milestones", ("milestones",), [], "milestones"),
    ("duplicate keys", (*M1, "key"), "phase-1", "body"),
    ("unknown depends_on", (*M1, "depends_on"), [{"milestone": "x"}], "body"),
    ("cycle a-b-a", (*M0, "depends_on"), [{"milestone": "phase-2"}], "body"),
    ("self cycle", (*M0, "depends_on"), [{"milestone": "phase-1"}], "body"),
    ("automatic unchecked", ("milestones", 2, "trigger"), "automatic", "milestones.2"),
    ("unknown principal", ("approval", "roles", "qa"), ["prn_x"], "approval"),
    ("unknown escalation", ("approval", "escalation", "client_ap"), ["p"], "approval"),
    ("role without principals", ("approval", "roles", "qa"), [], "approval"),
    ("empty role name", ("approval", "roles", ""), ["p"], "approval.roles"),
    ("long role name", ("approval", "roles", "r" * 101), ["p"], "approval.roles"),
    ("NUL in name", ("name",), "a\x00b", "name"),
    ("NUL in criterion", (*M0, "acceptance_criteria", 0, "id"), "\x00", "milestones.0.accept"),
    ("unknown customer", ("customer_id",), "cus_nope", "customer_id"),
]


def changed(body: dict[str, Any], path: tuple, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(body)
    *parents, last = path
    target = body
    for step in parents:
        target = target[step]
    if value is DROP:
        del target[last]
    else:
        target[last] = value
    return body


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [pytest.param(p, v, f, id=case) for case, p, v, f in INVALID_ENGAGEMENTS],
)
async def test_an_invalid_engagement_is_refused_with_the_field_named_and_nothing_is_created(
    example: Example, path: tuple, value: Any, field: str
):
    body = changed(engagement_body(example), path, value)
    before = counts(example.stack, Engagement, Milestone)
    assert_problem(await example.stack.post("/v1/engagements", body), 422, field)
    assert counts(example.stack, Engagement, Milestone) == before


@pytest.mark.parametrize(
    ("path", "value", "says"),
    [
        ((*M1, "key"), "phase-1", "duplicate milestone keys: ['phase-1']"),
        ((*M1, "depends_on"), [{"milestone": "x"}], "unknown depends_on: phase-2 → x"),
        ((*M0, "depends_on"), [{"milestone": "phase-2"}], "phase-1 → phase-2 → phase-1"),
        ((*M0, "depends_on"), [{"milestone": "phase-1"}], "cyclic depends_on: phase-1 → phase-1"),
    ],
)
async def test_graph_errors_say_which_milestones_are_wrong(
    example: Example, path: tuple, value: Any, says: str
):
    body = changed(engagement_body(example), path, value)
    problem = assert_problem(await example.stack.post("/v1/engagements", body), 422)
    assert says in problem["detail"]


@pytest.mark.parametrize("path", ["/v1/engagements", "/v1/principals", "/v1/customers"])
async def test_malformed_json_is_a_400_and_creates_nothing(stack: Stack, path: str):
    before = counts(stack, Principal, Customer, Engagement)
    response = await stack.http.post(
        path,
        content=b'{"name": "Acme", ',
        headers={**stack.auth(), "content-type": "application/json"},
    )
    assert_problem(response, 400)
    assert counts(stack, Principal, Customer, Engagement) == before


PRINCIPAL, CUSTOMER = {"name": "Ann", "email": "ann@example.com"}, {"name": "A", "currency": "USD"}


@pytest.mark.parametrize(
    ("path", "model", "body", "field"),
    [
        ("/v1/principals", Principal, {"name": "Ann"}, "email"),
        ("/v1/principals", Principal, {**PRINCIPAL, "email": "not-an-email"}, "email"),
        ("/v1/principals", Principal, {**PRINCIPAL, "name": ""}, "name"),
        ("/v1/principals", Principal, {**PRINCIPAL, "role": "admin"}, "role"),
        ("/v1/principals", Principal, {**PRINCIPAL, "name": "A\x00nn"}, "name"),
        ("/v1/customers", Customer, {"currency": "USD"}, "name"),
        ("/v1/customers", Customer, {**CUSTOMER, "currency": "ZZZ"}, "currency"),
        ("/v1/customers", Customer, {**CUSTOMER, "currency": "usd"}, "currency"),
        ("/v1/customers", Customer, {**CUSTOMER, "metadata": ["a"]}, "metadata"),
        ("/v1/customers", Customer, {**CUSTOMER, "vat": "x"}, "vat"),
        ("/v1/customers", Customer, {**CUSTOMER, "external_ref": "r" * 201}, "external_ref"),
        ("/v1/customers", Customer, {**CUSTOMER, "name": "Ac\x00me"}, "name"),
        ("/v1/customers", Customer, {**CUSTOMER, "metadata": {"k\x00": 1}}, "metadata"),
    ],
)
async def test_an_invalid_principal_or_customer_is_refused_and_not_created(
    stack: Stack, path: str, model: type, body: dict, field: str
):
    before = count(stack, model)
    assert_problem(await stack.post(path, body), 422, field)
    assert count(stack, model) == before


async def test_a_customer_is_created_and_read_back(stack: Stack):
    body = {"name": "Globex", "currency": "JPY", "external_ref": "crm-7", "metadata": {"t": 1}}
    created = await stack.post("/v1/customers", body)
    assert created.status_code == 201, created.text
    fetched = await stack.get(f"/v1/customers/{created.json()['id']}")
    assert fetched.status_code == 200
    assert {k: fetched.json()[k] for k in body} == body


async def test_requests_without_a_valid_bearer_token_are_unauthenticated(example: Example):
    path = f"/v1/engagements/{example.engagement['id']}"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
        assert_problem(await example.stack.http.get(path, headers=headers), 401)
    before = count(example.stack, Principal)
    response = await example.stack.http.post(
        "/v1/principals", json={"name": "Eve", "email": "eve@example.com"}
    )
    assert_problem(response, 401)
    assert count(example.stack, Principal) == before


async def test_approver_and_integration_tokens_are_forbidden_on_admin_only_endpoints(
    example: Example,
):
    stack = example.stack
    integration = await stack.post(
        f"/v1/engagements/{example.engagement['id']}/integration-tokens", None
    )
    assert integration.status_code == 201, integration.text
    requests = [
        ("/v1/principals", {"name": "Eve", "email": "eve@example.com"}),
        ("/v1/customers", {"name": "Evil Corp", "currency": "USD"}),
        ("/v1/engagements", engagement_body(example)),
        (f"/v1/engagements/{example.engagement['id']}/integration-tokens", None),
    ]
    before = counts(stack, Principal, Customer, Engagement)
    for token in (example.token("lead"), integration.json()["token"]):
        for path, body in requests:
            assert_problem(await stack.post(path, body, token), 403)
    assert counts(stack, Principal, Customer, Engagement) == before


@pytest.mark.parametrize(
    "path",
    [
        "/v1/engagements/eng_nope",
        "/v1/engagements/eng_nope/audit",
        "/v1/engagements/eng_nope/audit/verify",
        "/v1/customers/cus_nope",
        "/v1/customers/cus_nope/invoices",
        "/v1/invoices/inv_nope",
        "/v1/milestones/ms_nope/audit",
        "/v1/evidence/evd_nope",
        "/v1/runs/run_nope",
        "/v1/engagements/eng%00nope",
    ],
)
async def test_unknown_ids_are_not_found(stack: Stack, path: str):
    assert_problem(await stack.get(path), 404)


async def test_an_integration_token_for_an_unknown_engagement_is_not_found(stack: Stack):
    assert_problem(await stack.post("/v1/engagements/eng_nope/integration-tokens", None), 404)


async def test_an_integration_token_sees_its_engagement_only(example: Example):
    stack = example.stack
    token = (
        await stack.post(f"/v1/engagements/{example.engagement['id']}/integration-tokens", None)
    ).json()["token"]
    other = (await stack.post("/v1/engagements", engagement_body(example))).json()
    assert (
        await stack.get(f"/v1/engagements/{example.engagement['id']}", token)
    ).status_code == 200
    assert_problem(await stack.get(f"/v1/engagements/{other['id']}", token), 403)
    assert_problem(await stack.get(f"/v1/engagements/{example.engagement['id']}", "tgi_x"), 401)


async def test_a_stranger_cannot_read_an_engagement(example: Example):
    path = f"/v1/engagements/{example.engagement['id']}"
    assert_problem(await example.stack.get(path, example.token("stranger")), 403)
    assert (await example.stack.get(path, example.token("client"))).status_code == 200


async def test_evidence_is_stored_once_per_content_with_its_sha256(stack: Stack):
    content = os.urandom(1000)
    before = counts(stack, Evidence, EvidenceBlob)
    first, second = await upload(stack, content), await upload(stack, content)
    assert (first.status_code, second.status_code) == (201, 201), first.text
    assert first.json()["sha256"] == second.json()["sha256"] == hashlib.sha256(content).hexdigest()
    assert first.json()["size"] == len(content)
    assert first.json()["id"] != second.json()["id"]
    assert counts(stack, Evidence, EvidenceBlob) == [before[0] + 2, before[1] + 1]


async def test_evidence_exactly_at_the_limit_is_accepted(stack: Stack):
    response = await upload(stack, os.urandom(LIMIT))
    assert response.status_code == 201, response.text
    assert response.json()["size"] == LIMIT


async def test_evidence_over_the_limit_is_a_413_and_nothing_is_stored(stack: Stack):
    before = counts(stack, Evidence, EvidenceBlob)
    assert_problem(await upload(stack, os.urandom(LIMIT + 1)), 413)
    assert counts(stack, Evidence, EvidenceBlob) == before


async def test_an_upload_without_a_file_a_token_or_a_clean_description_is_refused(
    stack: Stack,
):
    before = counts(stack, Evidence, EvidenceBlob)
    response = await stack.http.post(
        "/v1/evidence", headers=stack.auth(), data={"description": "x"}
    )
    assert_problem(response, 422, "file")
    files = {"file": ("a.txt", os.urandom(10), "text/plain")}
    assert_problem(await stack.http.post("/v1/evidence", files=files), 401)
    response = await stack.http.post(
        "/v1/evidence", headers=stack.auth(), files=files, data={"description": "a\x00b"}
    )
    assert_problem(response, 422, "description")
    assert counts(stack, Evidence, EvidenceBlob) == before


async def test_a_nul_character_in_an_evidence_filename_is_dropped(stack: Stack):
    raw = (
        b'--XX\r\nContent-Disposition: form-data; name="file"; filename="a\x00b.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\nhello\r\n--XX--\r\n"
    )
    headers = {**stack.auth(), "content-type": "multipart/form-data; boundary=XX"}
    response = await stack.http.post("/v1/evidence", content=raw, headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["filename"] == "ab.txt"


async def test_evidence_bytes_reach_approvers_only_once_attached_to_their_engagement(
    example: Example,
):
    stack, content = example.stack, os.urandom(2048)
    evidence = (await upload(stack, content)).json()
    path = f"/v1/evidence/{evidence['id']}"
    admin = await stack.get(path)
    assert admin.status_code == 200
    assert admin.content == content
    assert admin.headers["x-content-sha256"] == hashlib.sha256(content).hexdigest()
    assert_problem(await stack.get(path, example.token("lead")), 403)

    trigger = await example.trigger("phase-1", {"source": "t", "evidence_ids": [evidence["id"]]})
    assert trigger.status_code == 202, trigger.text
    lead = await stack.get(path, example.token("lead"))
    assert lead.status_code == 200
    assert lead.content == content
    assert_problem(await stack.get(path, example.token("stranger")), 403)


async def test_the_health_check_reports_the_database_and_temporal(stack: Stack):
    response = await stack.http.get("/healthz")
    assert response.status_code == 200, response.text  # which of the two did not answer
    assert response.json()["database"] == "ok"
    assert response.json()["temporal"] == "ok"
