"""Evidence over real HTTP on SQLite and PostgreSQL: a trigger or decision cites only evidence its
caller may read within that engagement (so citing never opens another engagement's file), and any
filename downloads with RFC 6266 headers."""

import uuid
from typing import Any
from urllib.parse import unquote

import pytest
from sqlalchemy import func, select

from api.example import platform_migration
from db.models import EvidenceLink, Trigger
from tests.api.problems import assert_problem
from tests.conftest_stack import Example, Stack


class Other:
    """A second engagement of the same customer, approved by two outsiders, with its own
    integration token."""

    def __init__(self, example: Example, engagement: dict[str, Any], token: str) -> None:
        self.example, self.engagement, self.token = example, engagement, token

    @property
    def id(self) -> str:
        return self.engagement["id"]

    def milestone(self, key: str) -> str:
        return next(m["id"] for m in self.engagement["milestones"] if m["key"] == key)

    async def trigger(self, key: str, evidence_ids: list[str], token: str | None = None):
        return await self.example.stack.post(
            f"/v1/milestones/{self.milestone(key)}/triggers",
            {"source": "t", "evidence_ids": evidence_ids},
            token or self.token,
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )


@pytest.fixture
async def other(example: Example) -> Other:
    stack = example.stack
    for name in ("outsider", "outsider_client"):
        example.people[name] = await stack.principal(name)
    body = platform_migration(
        example.customer["id"],
        example.people["outsider"]["id"],
        example.people["outsider_client"]["id"],
        example.people["outsider"]["id"],
        example.people["outsider_client"]["id"],
    )
    created = await stack.post("/v1/engagements", body)
    assert created.status_code == 201, created.text
    engagement = created.json()
    token = await stack.post(f"/v1/engagements/{engagement['id']}/integration-tokens", {})
    assert token.status_code == 201, token.text
    return Other(example, engagement, token.json()["token"])


async def upload(stack: Stack, name: str, token: str | None = None) -> dict[str, Any]:
    response = await stack.http.post(
        "/v1/evidence",
        headers=stack.auth(token),
        files={"file": (name, f"contents of {name}".encode(), "application/pdf")},
    )
    assert response.status_code == 201, response.text
    return response.json()


async def ours_only(example: Example) -> dict[str, Any]:
    """A file attached to the example engagement through its phase-1 trigger."""
    evidence = await upload(example.stack, "ours.pdf")
    trigger = await example.trigger("phase-1", {"source": "t", "evidence_ids": [evidence["id"]]})
    assert trigger.status_code == 202, trigger.text
    return evidence


def attached_to(stack: Stack, evidence_id: str) -> list[str]:
    with stack.sessions() as session:
        query = select(EvidenceLink.engagement_id).where(EvidenceLink.evidence_id == evidence_id)
        return list(session.scalars(query))


def triggers_of(stack: Stack, milestone_id: str) -> int:
    with stack.sessions() as session:
        query = select(func.count()).select_from(Trigger)
        return session.scalar(query.where(Trigger.milestone_id == milestone_id)) or 0


async def test_a_trigger_citing_another_engagements_evidence_is_refused_and_records_nothing(
    example: Example, other: Other
):
    stack, evidence = example.stack, await ours_only(example)

    refused = await other.trigger("phase-1", [evidence["id"]])

    assert_problem(refused, 422, "evidence_ids")
    assert attached_to(stack, evidence["id"]) == [example.engagement["id"]]
    assert triggers_of(stack, other.milestone("phase-1")) == 0
    again = await other.trigger("phase-1", [])  # the milestone was not claimed
    assert again.status_code == 202, again.text
    download = await stack.get(f"/v1/evidence/{evidence['id']}", example.token("outsider"))
    assert_problem(download, 403)


async def test_a_decision_citing_another_engagements_evidence_is_refused(
    example: Example, other: Other
):
    stack, evidence = example.stack, await ours_only(example)
    run_id = (await other.trigger("phase-1", [], stack.admin_token)).json()["run_id"]
    await example.wait_for_stage(run_id, "awaiting_approval")

    refused = await example.decide(
        run_id, "delivery_lead", "outsider", evidence_ids=[evidence["id"]]
    )

    assert_problem(refused, 422, "evidence_ids")
    assert attached_to(stack, evidence["id"]) == [example.engagement["id"]]
    assert "delivery_lead" in (await example.run(run_id))["pending_roles"]
    download = await stack.get(f"/v1/evidence/{evidence['id']}", example.token("outsider"))
    assert_problem(download, 403)


async def test_an_integration_cites_its_own_upload_and_then_the_same_file_again(
    example: Example, other: Other
):
    stack = example.stack
    evidence = await upload(stack, "cutover.pdf", other.token)

    first = await other.trigger("phase-1", [evidence["id"]])
    assert first.status_code == 202, first.text
    second = await other.trigger("phase-2", [evidence["id"]])  # now on this engagement already
    assert second.status_code == 202, second.text

    assert attached_to(stack, evidence["id"]) == [other.id]
    download = await stack.get(f"/v1/evidence/{evidence['id']}", example.token("outsider_client"))
    assert download.status_code == 200, download.text
    assert_problem(await stack.get(f"/v1/evidence/{evidence['id']}", example.token("lead")), 403)


async def test_an_approver_cites_the_triggers_evidence_and_a_file_of_their_own(
    example: Example, other: Other
):
    stack = example.stack
    cited = await upload(stack, "trigger.pdf", other.token)
    run_id = (await other.trigger("phase-1", [cited["id"]])).json()["run_id"]
    await example.wait_for_stage(run_id, "awaiting_approval")
    own = await upload(stack, "review.pdf", example.token("outsider"))

    decided = await example.decide(
        run_id, "delivery_lead", "outsider", evidence_ids=[cited["id"], own["id"]]
    )

    assert decided.status_code == 202, decided.text
    assert attached_to(stack, own["id"]) == [other.id]
    download = await stack.get(f"/v1/evidence/{own['id']}", example.token("outsider_client"))
    assert download.status_code == 200, download.text


@pytest.mark.parametrize(
    ("filename", "fallback", "encoded"),
    [
        ("报告.pdf", "__.pdf", "%E6%8A%A5%E5%91%8A.pdf"),
        ("Résumé final.pdf", "Resume final.pdf", "R%C3%A9sum%C3%A9%20final.pdf"),
        ('say "hi"\\now.txt', "say _hi__now.txt", "say%20%22hi%22%5Cnow.txt"),
    ],
)
async def test_any_filename_downloads_under_its_own_name_with_rfc_6266_headers(
    stack: Stack, filename: str, fallback: str, encoded: str
):
    uploaded = await upload_raw(stack, filename, b"%PDF-1.4 report")
    assert uploaded["filename"] == filename

    response = await stack.get(f"/v1/evidence/{uploaded['id']}")

    assert response.status_code == 200, response.text
    assert response.content == b"%PDF-1.4 report"
    assert response.headers["x-content-type-options"] == "nosniff"
    disposition = response.headers["content-disposition"]
    assert disposition == f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
    assert unquote(disposition.split("filename*=UTF-8''")[1]) == filename


async def upload_raw(stack: Stack, filename: str, content: bytes) -> dict[str, Any]:
    """Upload the name as UTF-8 in a backslash-escaped quoted string; httpx would rewrite '"'."""
    quoted = filename.replace("\\", "\\\\").replace('"', '\\"')
    raw = (
        (
            f'--b\r\nContent-Disposition: form-data; name="file"; filename="{quoted}"\r\n'
            "Content-Type: application/pdf\r\n\r\n"
        ).encode()
        + content
        + b"\r\n--b--\r\n"
    )
    headers = {**stack.auth(), "Content-Type": "multipart/form-data; boundary=b"}
    response = await stack.http.post("/v1/evidence", content=raw, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()
