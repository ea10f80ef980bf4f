"""Faults end to end: the worker SIGKILLed while runs bill, the Temporal dev server restarted
mid-run, and still every run bills exactly once.

Here the Temporal dev server and ``tollgate worker`` are real processes (tests/processes.py);
the API is served in this process over real HTTP. While a process is down the test reads run
stages from the database (a run's status query needs a worker); the verdict comes from the API,
cross-checked against the database.
"""

import asyncio
import json
import secrets
import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, create_engine, func, select
from temporalio.client import Client

from api.app import create_app
from api.example import platform_migration
from config import Settings
from db.models import AuditEvent, InvoiceLine, RetentionEntry, Run
from db.session import make_engine, make_session_factory, normalize_url
from tests.conftest import database
from tests.conftest_stack import Example, Stack
from tests.processes import TemporalDevServer, WorkerProcess, free_port, log_tail
from tests.serving import served

FEES = {"phase-1": 3_000_000, "phase-2": 4_000_000, "phase-3": 3_000_000}
RETENTION_PERCENT = 10
TRIGGERS = {
    "phase-1": {"source": "fault-test"},
    "phase-2": {"source": "fault-test", "kpis": {"error_rate_pct": "0.4"}},
    "phase-3": {"source": "fault-test"},
}
BILLING_STARTED = ("post_billing", "activity started")
# A killed worker's activity is retried only once its 60 s start-to-close timeout passes.
SETTLE_SECONDS = 180
# How long an approver's client keeps sending a decision that answers 503.
DECISION_PATIENCE = 90


@dataclass
class Faults:
    """The killable processes, and what was done to them."""

    temporal: TemporalDevServer
    worker: WorkerProcess
    client: Client
    task_queue: str
    observer: Engine  # plain reads: never takes SQLite's write lock from the worker
    worker_kills: int = 0
    temporal_restarts: int = 0
    caught_in_billing: int = 0
    decisions_retried: int = 0
    reconnect_seconds: list[float] = field(default_factory=list)
    # Runs whose post_billing the worker's log says started, and how far the log was read.
    billing_began: set[str] = field(default_factory=set)
    log_read: int = 0

    def stages(self, run_ids: Iterable[str]) -> dict[str, str]:
        with self.observer.connect() as conn:
            rows = conn.execute(select(Run.id, Run.stage).where(Run.id.in_(list(run_ids))))
            return {run_id: stage for run_id, stage in rows}

    async def wait_for(self, run_ids: list[str], stage: str, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while list((stages := self.stages(run_ids)).values()).count(stage) < len(run_ids):
            if loop.time() > deadline:
                raise AssertionError(
                    f"runs never all reached {stage!r}: {Counter(stages.values())}\n"
                    f"worker log:\n{log_tail(self.worker.log)}"
                )
            await asyncio.sleep(0.05)

    async def approve(self, runs: dict[str, Example], role: str, person: str) -> None:
        """Every run approved for ``role``, each decision sent again while it answers 503 (as
        its problem says to: a run whose worker just died, or whose Temporal just restarted,
        may not answer in time), for up to DECISION_PATIENCE seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DECISION_PATIENCE

        async def approve_one(run_id: str, example: Example) -> None:
            sent_again = False
            while (response := await example.decide(run_id, role, person)).status_code == 503:
                if loop.time() > deadline:
                    break
                self.decisions_retried += 1
                sent_again = True
                await asyncio.sleep(1)
            if sent_again and response.status_code == 409:  # the first was taken after all
                assert role not in (await example.run(run_id))["pending_roles"], response.text
                return
            assert response.status_code == 202, response.text

        await asyncio.gather(*(approve_one(run_id, example) for run_id, example in runs.items()))

    async def start_worker(self) -> None:
        self.worker.start()
        await self.worker.wait_polling(self.client, self.task_queue)

    def billing(self, run_ids: list[str]) -> list[str]:
        """The runs whose billing has begun and not committed: the run enters ``billing`` in the
        transaction that posts its lines, so the worker's log says when that activity starts."""
        self._read_worker_log()
        stages = self.stages(run_ids)
        return [r for r, stage in stages.items() if r in self.billing_began and stage != "billed"]

    def _read_worker_log(self) -> None:
        with self.worker.log.open("rb") as log:
            log.seek(self.log_read)
            complete = log.read().rpartition(b"\n")[0]
        self.log_read += len(complete) + 1 if complete else 0
        for line in complete.decode(errors="replace").splitlines():
            if line.startswith("{"):
                step = json.loads(line)
                if (step.get("activity"), step.get("event")) == BILLING_STARTED:
                    self.billing_began.add(step["run_id"])

    async def kill_worker_while_billing(self, run_ids: list[str]) -> None:
        """SIGKILL the worker as soon as one of ``run_ids`` is billing (or, should they all be
        billed already, at once), then start a new one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while loop.time() < deadline:
            if self.billing(run_ids) or all(s == "billed" for s in self.stages(run_ids).values()):
                break
            await asyncio.sleep(0.005)
        self.worker.stop(signal.SIGKILL)
        self.worker_kills += 1
        self.caught_in_billing += len(self.billing(run_ids))
        await self.start_worker()

    async def restart_temporal(self, sig: signal.Signals) -> None:
        """Stop the dev server with ``sig`` and start it again on the same database file, then
        wait until the live worker, which reconnects on its own, polls again: until then the
        runs cannot answer, and decisions sent meanwhile are 503s to be sent again."""
        self.temporal.stop(sig)
        self.temporal.start()
        await self.temporal.connect()
        loop = asyncio.get_running_loop()
        started = loop.time()
        await self.worker.wait_polling(self.client, self.task_queue, patience=120)
        self.reconnect_seconds.append(round(loop.time() - started, 1))
        self.temporal_restarts += 1


@asynccontextmanager
async def fault_stack(backend: str, directory: Path) -> AsyncIterator[tuple[Stack, Faults]]:
    """A dev server and a worker as processes, and the API over HTTP in this process."""
    with database(backend, directory) as url:
        task_queue = f"tollgate-faults-{uuid.uuid4()}"
        temporal = TemporalDevServer(
            "temporal",
            directory / "temporal.log",
            db_file=directory / "temporal.db",
            port=free_port(),
        )
        worker = WorkerProcess(
            "worker",
            directory / "worker.log",
            settings={
                "TOLLGATE_DATABASE_URL": url,
                "TOLLGATE_TEMPORAL_ADDRESS": temporal.address,
                "TOLLGATE_TASK_QUEUE": task_queue,
                "TOLLGATE_FINALIZE_CRON": "",  # no Schedule finalizing drafts mid-test
            },
        )
        settings = Settings(
            database_url=url, admin_token=secrets.token_urlsafe(24), task_queue=task_queue
        )
        engine = make_engine(url)
        observer = create_engine(normalize_url(url))
        try:
            temporal.start()
            client = await temporal.connect()
            faults = Faults(temporal, worker, client, task_queue, observer)
            await faults.start_worker()
            app = create_app(settings, temporal=client)
            async with (
                served(app, settings) as base,
                httpx.AsyncClient(base_url=base, timeout=30) as http,
            ):
                sessions = make_session_factory(engine)
                admin = settings.admin_token or ""
                yield Stack(http, admin, sessions, backend, client, task_queue), faults
        finally:
            worker.stop(signal.SIGTERM)
            temporal.stop(signal.SIGTERM)
            observer.dispose()
            engine.dispose()


async def new_engagement(stack: Stack, people: dict, customer: dict) -> Example:
    ids = [people[name]["id"] for name in ("lead", "client", "lead_backup", "client_backup")]
    response = await stack.post("/v1/engagements", platform_migration(customer["id"], *ids))
    assert response.status_code == 201, response.text
    return Example(stack, people, customer, response.json())


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_runs_bill_exactly_once_through_worker_kills_and_temporal_restarts(
    backend: str, tmp_path: Path
):
    async with fault_stack(backend, tmp_path) as (stack, faults):
        people = {
            name: await stack.principal(name)
            for name in ("lead", "client", "lead_backup", "client_backup")
        }
        customers = []
        for name in ("Acme Corp", "Globex"):
            response = await stack.post("/v1/customers", {"name": name, "currency": "USD"})
            assert response.status_code == 201, response.text
            customers.append(response.json())
        # Two engagements share Acme's draft invoice (and its lock); Globex has its own.
        examples = [
            await new_engagement(stack, people, customer)
            for customer in (customers[0], customers[0], customers[1])
        ]
        waves: list[dict[str, Example]] = []
        for example in examples:  # every phase at once: phases 2 and 3 wait on their upstream
            wave = {}
            for key, body in TRIGGERS.items():
                response = await example.trigger(key, body)
                assert response.status_code == 202, response.text
                wave[response.json()["run_id"]] = example
            waves.append(wave)
        runs = {run_id: example for wave in waves for run_id, example in wave.items()}
        await faults.wait_for(list(runs), "awaiting_approval", timeout=60)
        await faults.approve(runs, "delivery_lead", "lead")

        # Each wave: the client approves an engagement's runs, and the worker is SIGKILLed as
        # soon as one of them is billing (a new worker takes over at once).
        await faults.approve(waves[0], "client_ap", "client")
        await faults.kill_worker_while_billing(list(waves[0]))
        # Then Temporal is stopped under the live worker, and restarted on its state.
        await faults.approve(waves[1], "client_ap", "client")
        await faults.kill_worker_while_billing(list(waves[1]))
        await faults.restart_temporal(signal.SIGTERM)
        # Then Temporal is SIGKILLed, and the worker killed once more while the dependants
        # woken by their upstream's billing bill in turn.
        await faults.approve(waves[2], "client_ap", "client")
        await faults.kill_worker_while_billing(list(waves[2]))
        await faults.restart_temporal(signal.SIGKILL)
        await faults.kill_worker_while_billing(list(runs))

        await faults.wait_for(list(runs), "billed", timeout=SETTLE_SECONDS)
        # A run whose worker died after its billing committed says so once that activity is
        # retried (its start-to-close timeout) and finds its lines posted.
        await settled(runs, timeout=SETTLE_SECONDS)
        lines = await check_books(stack, runs, customers)
        check_database(faults.observer, runs)
        print(
            f"\n[{backend}] worker SIGKILLs: {faults.worker_kills} "
            f"(runs caught in billing: {faults.caught_in_billing}), "
            f"Temporal restarts: {faults.temporal_restarts} "
            f"(worker polling again after {faults.reconnect_seconds} s), "
            f"decisions sent again after a 503: {faults.decisions_retried}, "
            f"runs billed: {len(runs)}, invoice lines: {lines}"
        )


async def settled(runs: dict[str, Example], timeout: float) -> None:
    """Until every run, asked through the API, says it is billed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    for run_id, example in runs.items():
        while (run := await example.run(run_id))["stage"] != "billed":
            assert loop.time() < deadline, run
            await asyncio.sleep(0.2)


async def check_books(stack: Stack, runs: dict[str, Example], customers: list[dict]) -> int:
    """Through the API: one milestone and one retention line per run, totals equal to their
    lines, escrow equal to retention held, every audit chain intact. Returns the line count."""
    fee_of = {}
    for run_id, example in runs.items():
        run = await example.run(run_id)
        assert (run["stage"], run["outcome"]) == ("billed", "billed"), run
        key = next(
            m["key"] for m in example.engagement["milestones"] if m["id"] == run["milestone_id"]
        )
        fee_of[run_id] = FEES[key]
    lines: list[dict[str, Any]] = []
    for customer in customers:
        listed = await stack.get(f"/v1/customers/{customer['id']}/invoices")
        assert listed.status_code == 200, listed.text
        for summary in listed.json()["items"]:
            invoice = (await stack.get(f"/v1/invoices/{summary['id']}")).json()
            assert invoice["total_minor"] == sum(line["amount_minor"] for line in invoice["lines"])
            lines += invoice["lines"]
    by_run = {
        run_id: sorted(
            (line["kind"], line["amount_minor"]) for line in lines if line["run_id"] == run_id
        )
        for run_id in runs
    }
    assert by_run == {
        run_id: [("milestone", fee), ("retention_withheld", -fee * RETENTION_PERCENT // 100)]
        for run_id, fee in fee_of.items()
    }
    assert len(lines) == 2 * len(runs), "no line belongs to anything but these runs"

    for example in {id(e): e for e in runs.values()}.values():
        engagement = await example.refresh()
        held = sum(m["retention_held_minor"] for m in engagement["milestones"])
        withheld = -sum(
            line["amount_minor"]
            for line in lines
            if line["kind"] == "retention_withheld" and runs[line["run_id"]] is example
        )
        assert engagement["retention_balance_minor"] == held == withheld == 1_000_000
        assert [m["status"] for m in engagement["milestones"]] == ["accepted"] * 3
        verify = await stack.get(f"/v1/engagements/{example.engagement['id']}/audit/verify")
        assert verify.json()["ok"] is True, verify.text
    return len(lines)


def check_database(observer: Engine, runs: dict[str, Example]) -> None:
    """The rows behind the API's answers: each effect of billing exists once per run."""
    with observer.connect() as conn:

        def per_run(column: Any, *where: Any) -> dict[str, int]:
            query = select(column, func.count()).where(column.in_(list(runs)), *where)
            return dict(conn.execute(query.group_by(column)).all())

        once = dict.fromkeys(runs, 1)
        assert per_run(RetentionEntry.run_id, RetentionEntry.kind == "held") == once
        assert per_run(AuditEvent.run_id, AuditEvent.kind == "milestone_accepted") == once
        assert per_run(AuditEvent.run_id, AuditEvent.kind == "invoice_line_posted") == {
            run_id: 2 for run_id in runs
        }
        assert per_run(InvoiceLine.run_id) == {run_id: 2 for run_id in runs}
