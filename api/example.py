"""The example engagement from the product brief: the ``--demo`` data and the end-to-end test's.

A 100,000.00 USD platform migration billed 30/40/30 with 10% retention, dual sign-off (delivery
lead + client AP), deemed acceptance after 5 business days; phase 2 depends on phase 1, phase 3 on
phase 2 having an error rate of at most 0.5%.
"""

import asyncio
from typing import Any

import httpx

# A one-page PDF ("Phase 1 signed off"), small enough to read in a hex dump.
SIGNOFF_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]/Contents 4 0 R"
    b"/Resources<</Font<</F1 5 0 R>>>>>>endobj\n"
    b"4 0 obj<</Length 58>>stream\nBT /F1 24 Tf 72 700 Td (Phase 1 signed off) Tj ET\n"
    b"endstream endobj\n5 0 obj<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


def platform_migration(
    customer_id: str,
    delivery_lead: str,
    client_ap: str,
    escalation_lead: str,
    escalation_client: str,
) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "name": "Platform migration",
        "currency": "USD",
        "retention": {"percent": "10", "release": "on_final_signoff", "release_delay": None},
        "approval": {
            "roles": {"delivery_lead": [delivery_lead], "client_ap": [client_ap]},
            "escalation": {"delivery_lead": [escalation_lead], "client_ap": [escalation_client]},
            "reminder_after": {"business_days": 2},
            "escalate_after": {"business_days": 4},
            "deemed_acceptance_after": {"business_days": 5},
            "expire_after": {"business_days": 30},
            "calendar": {
                "country": "US",
                "subdivision": None,
                "timezone": "America/New_York",
                "extra_holidays": ["2026-12-24"],
            },
        },
        "milestones": [
            {
                "key": "phase-1",
                "name": "Assessment and cutover plan",
                "fee_minor": 3_000_000,
                "trigger": "manual",
                "depends_on": [],
                "allow_partial": False,
                "acceptance_criteria": [
                    {"id": "plan", "description": "Cutover plan signed off"},
                    {
                        "id": "p95",
                        "description": "p95 latency under 300 ms",
                        "metric": "p95_latency_ms",
                        "op": "<=",
                        "threshold": "300",
                    },
                ],
            },
            {
                "key": "phase-2",
                "name": "Non-production migration",
                "fee_minor": 4_000_000,
                "trigger": "both",
                "depends_on": [{"milestone": "phase-1"}],
                "allow_partial": True,
                "acceptance_criteria": [
                    {
                        "id": "errors",
                        "description": "Error rate at most 1%",
                        "metric": "error_rate_pct",
                        "op": "<=",
                        "threshold": "1",
                    },
                ],
            },
            {
                "key": "phase-3",
                "name": "Production cutover",
                "fee_minor": 3_000_000,
                "trigger": "manual",
                "depends_on": [
                    {
                        "milestone": "phase-2",
                        "kpi": {"metric": "error_rate_pct", "op": "<=", "threshold": "0.5"},
                    }
                ],
            },
        ],
    }


async def load_demo(http: httpx.AsyncClient, admin_token: str) -> dict[str, Any]:
    """Create the example through the public API and trigger phase 1, which then waits for
    sign-off. Returns what a newcomer needs next: ids, tokens and the run."""
    admin = {"Authorization": f"Bearer {admin_token}"}

    async def post(path: str, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
        response = await http.post(path, json=body, headers={**admin, **kw.pop("headers", {})})
        response.raise_for_status()
        return response.json()

    people = {}
    for name, email in [
        ("Dana Lead", "dana@consultancy.example"),
        ("Chris AP", "ap@client.example"),
        ("Pat Partner", "pat@consultancy.example"),
        ("Sam Controller", "controller@client.example"),
    ]:
        people[name] = await post("/v1/principals", {"name": name, "email": email})
    customer = await post("/v1/customers", {"name": "Acme Corp", "currency": "USD"})
    ids = [p["id"] for p in people.values()]
    engagement = await post("/v1/engagements", platform_migration(customer["id"], *ids))
    upload = await http.post(
        "/v1/evidence",
        headers=admin,
        files={"file": ("phase-1-signoff.pdf", SIGNOFF_PDF, "application/pdf")},
        data={"description": "Phase 1 sign-off sheet"},
    )
    upload.raise_for_status()
    phase1 = engagement["milestones"][0]
    run = await post(
        f"/v1/milestones/{phase1['id']}/triggers",
        {
            "source": "delivery-tracker",
            "completion_percent": "100",
            "kpis": {"p95_latency_ms": "212"},
            "evidence_ids": [upload.json()["id"]],
            "external_ref": "JIRA-123",
            "note": "Phase 1 delivered",
        },
        headers={"Idempotency-Key": f"demo-phase-1-{engagement['id']}"},
    )
    # The demo says "waiting for approval": make it true before saying it.
    for _ in range(300):
        status = await http.get(f"/v1/runs/{run['run_id']}", headers=admin)
        if status.is_success and status.json()["stage"] == "awaiting_approval":
            break
        await asyncio.sleep(0.1)
    return {"people": people, "customer": customer, "engagement": engagement, "run": run}
