"""What ``tollgate dev --demo`` prints once the example is loaded: where to look, how to approve."""

import httpx

from api.example import load_demo
from config import Settings


async def announce_demo(settings: Settings) -> None:
    base = f"http://{settings.api_host}:{settings.api_port}"
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        demo = await load_demo(http, settings.admin_token or "")
    run_id = demo["run"]["run_id"]
    lead, client = list(demo["people"].values())[:2]
    admin = f"Authorization: Bearer {settings.admin_token}"

    def approve(role: str, token: str) -> str:
        body = f'{{"role": "{role}", "decision": "approve", "comment": "Looks good"}}'
        return (
            f"  curl -s -X POST {base}/v1/runs/{run_id}/decisions \\\n"
            f"       -H 'Authorization: Bearer {token}' \\\n"
            f"       -H 'Content-Type: application/json' -d '{body}'"
        )

    print(
        "\n".join(
            [
                "",
                f"Demo loaded: engagement {demo['engagement']['id']} (Platform migration).",
                "Phase 1 is waiting for approval; see it in the Temporal UI:",
                f"  http://127.0.0.1:{settings.dev_ui_port}/namespaces/default/workflows/{run_id}",
                "Approve it as the delivery lead, then as the client's AP:",
                approve("delivery_lead", lead["token"]),
                approve("client_ap", client["token"]),
                "Then read the run, the invoice and the audit trail:",
                f"  curl -s {base}/v1/runs/{run_id} -H '{admin}'",
                "",
            ]
        ),
        flush=True,
    )
