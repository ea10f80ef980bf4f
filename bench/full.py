"""The full pipeline over HTTP: engagements like the example's, then per run a trigger, two
approvals and the wait until billed; afterwards the checks that no money was lost."""

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from api.example import platform_migration
from bench.measure import RunTimes

KPIS = {"p95_latency_ms": "212"}
APPROVERS = (("delivery_lead", "lead"), ("client_ap", "client"))
PEOPLE = ("lead", "client", "lead_backup", "client_backup")


class BenchFailure(Exception):
    """Something the benchmark drove did not behave: the figures would be meaningless."""


@dataclass
class Target:
    """One engagement on one API process: the milestone a run is triggered on."""

    http: httpx.AsyncClient
    milestone_id: str
    run_id: str = ""


class Driver:
    def __init__(self, apis: list[httpx.AsyncClient], admin_token: str, poll: float) -> None:
        self.apis = apis
        self.admin = {"Authorization": f"Bearer {admin_token}"}
        self.poll = poll
        self.tokens: dict[str, str] = {}
        self.ids: dict[str, str] = {}

    async def _post(self, http: httpx.AsyncClient, path: str, body: Any, **headers: str) -> Any:
        response = await http.post(path, json=body, headers={**self.admin, **headers})
        if not response.is_success:
            raise BenchFailure(f"POST {path}: {response.status_code} {response.text}")
        return response.json()

    async def people(self, group: str = "") -> None:
        """The example's four people; another ``group`` is four more, named ``lead{group}``…"""
        for name in (f"{name}{group}" for name in PEOPLE):
            body = {"name": f"bench {name}", "email": f"{name}@bench.example"}
            person = await self._post(self.apis[0], "/v1/principals", body)
            self.ids[name], self.tokens[name] = person["id"], person["token"]

    async def engagement(self, index: int, group: str = "") -> Target:
        """A customer and the example engagement of its own, so runs do not share a draft;
        signed off by the ``group``'s people."""
        http = self.apis[index % len(self.apis)]
        customer = await self._post(
            http, "/v1/customers", {"name": f"Bench {index}", "currency": "USD"}
        )
        ids = [self.ids[f"{name}{group}"] for name in PEOPLE]
        engagement = await self._post(
            http, "/v1/engagements", platform_migration(customer["id"], *ids)
        )
        return Target(http, engagement["milestones"][0]["id"])

    async def status(self, target: Target) -> dict[str, Any]:
        response = await target.http.get(f"/v1/runs/{target.run_id}", headers=self.admin)
        if not response.is_success:
            raise BenchFailure(f"run {target.run_id}: {response.status_code} {response.text}")
        return response.json()

    async def wait_for(self, target: Target, stage: str, patience: float = 120) -> None:
        deadline = time.monotonic() + patience
        while (now := await self.status(target))["stage"] != stage:
            if now["stage"] in {"failed", "rejected", "cancelled", "expired"}:
                raise BenchFailure(f"run {target.run_id} ended {now['stage']}")
            if time.monotonic() > deadline:
                raise BenchFailure(f"run {target.run_id} stuck in {now['stage']}")
            await asyncio.sleep(self.poll)

    async def trigger(self, target: Target, times: RunTimes) -> float:
        start = time.monotonic()
        body = {"source": "bench", "kpis": KPIS}
        path = f"/v1/milestones/{target.milestone_id}/triggers"
        run = await self._post(target.http, path, body, **{"Idempotency-Key": str(uuid.uuid4())})
        target.run_id = run["run_id"]
        times.trigger = time.monotonic() - start
        return start

    async def full_run(self, target: Target) -> RunTimes:
        times = RunTimes()
        start = await self.trigger(target, times)
        await self.wait_for(target, "awaiting_approval")
        times.to_awaiting = time.monotonic() - start
        for role, person in APPROVERS:
            times.decisions.append(await self.approve(target, role, person))
        approved = time.monotonic()
        await self.wait_for(target, "billed")
        times.to_billed = time.monotonic() - approved
        return times

    async def approvals(self, person: str) -> tuple[float, int]:
        """``GET /v1/me/approvals`` as ``person``: how long it took, and how many it listed."""
        sent = time.monotonic()
        response = await self.apis[0].get(
            "/v1/me/approvals", headers={"Authorization": f"Bearer {self.tokens[person]}"}
        )
        if not response.is_success:
            raise BenchFailure(f"approvals of {person}: {response.status_code} {response.text}")
        return time.monotonic() - sent, len(response.json()["items"])

    async def approve(self, target: Target, role: str, person: str) -> float:
        """One approval over HTTP; how long the request took."""
        sent = time.monotonic()
        response = await target.http.post(
            f"/v1/runs/{target.run_id}/decisions",
            json={"role": role, "decision": "approve", "comment": "", "evidence_ids": []},
            headers={"Authorization": f"Bearer {self.tokens[person]}"},
        )
        if response.status_code != 202:
            raise BenchFailure(
                f"decision on {target.run_id}: {response.status_code} {response.text}"
            )
        return time.monotonic() - sent

    async def check(self, targets: list[Target]) -> list[str]:
        """What went wrong with the money, read through the API: each billed run has exactly
        one milestone line and one retention line; each invoice's total is its lines' sum."""
        problems: list[str] = []
        invoices: dict[str, dict[str, Any]] = {}
        for target in targets:
            run = await self.status(target)
            if run["stage"] != "billed" or not run.get("invoice_id"):
                problems.append(f"run {target.run_id} is {run['stage']}, not billed")
                continue
            if run["invoice_id"] not in invoices:
                response = await target.http.get(
                    f"/v1/invoices/{run['invoice_id']}", headers=self.admin
                )
                invoices[run["invoice_id"]] = response.json()
            lines = [
                line
                for line in invoices[run["invoice_id"]]["lines"]
                if line["run_id"] == target.run_id
            ]
            kinds = sorted(line["kind"] for line in lines)
            if kinds != ["milestone", "retention_withheld"]:
                problems.append(f"run {target.run_id} has lines {kinds}")
        for invoice_id, invoice in invoices.items():
            total = sum(line["amount_minor"] for line in invoice["lines"])
            if total != invoice["total_minor"]:
                problems.append(
                    f"invoice {invoice_id}: total {invoice['total_minor']} ≠ lines {total}"
                )
        return problems
