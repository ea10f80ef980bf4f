"""The books at scale: the reads whose cost could grow with history, with N runs recorded.

    python bench/books.py [--database sqlite|postgresql] [--runs 300000] [--reads 20]

Starts ``tollgate api`` on a fresh SQLite file or PostgreSQL database of its own (no Temporal:
these reads need none, and a status the API cannot ask Temporal for is read from the books).
Through the API it creates the example engagement and its people, and five more engagements with
other people; one trigger gives a real run snapshot. Then ``--runs`` runs of the first engagement
are written straight to the books with that snapshot, as years of work would leave them: one in a
thousand awaiting approval, the rest billed. The other client has five runs awaiting approval, one
per engagement. Prints p50/p95/p99 over ``--reads`` reads of each, one after another:

- two pages of ``GET /v1/runs`` (an operator's list), and up to two within
  ``?stage=awaiting_approval``;
- ``GET /v1/me/approvals`` by the other client (its five runs among everyone's);
- ``GET /metrics`` (runs, billed amounts and notices counted in the books at each scrape).

Figures, never assertions.
"""

import argparse
import asyncio
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from sqlalchemy import insert, select, text, update

from bench import processes
from bench.full import BenchFailure, Driver, Target
from bench.measure import percentiles
from db.models import Run, RunSigner
from db.session import make_engine
from domain.lifecycle import RunStage
from services.run_signers import signers
from workflows.contracts import ApprovalPolicy

BATCH = 5_000
AWAITING_EVERY = 1_000
SOLO_RUNS = 5
SIGNER_COLUMNS = ("run_id", "principal_id", "role", "capacity")


async def record_runs(driver: Driver, url: str, count: int) -> None:
    """``count`` runs of the example engagement, written to the books in batches; and five runs
    of the other client's (one on each of five engagements), moved to awaiting approval (no
    worker runs to move them)."""
    example = await driver.engagement(0)
    solos = [await driver.engagement(1 + n, "_solo") for n in range(SOLO_RUNS)]
    for target in (example, *solos):
        await recorded_trigger(driver, target)
    engine = make_engine(url)
    now = datetime.now(UTC)
    try:
        with engine.begin() as connection:
            template = connection.execute(
                select(Run).where(Run.milestone_id == example.milestone_id)
            ).one()
            policy = ApprovalPolicy(**template.snapshot["policy"])
            for start in range(0, count, BATCH):
                runs = [
                    _run(template, now - timedelta(hours=count - n), n)
                    for n in range(start, min(start + BATCH, count))
                ]
                connection.execute(insert(Run), runs)
                named = [row for run in runs for row in signers(str(run["id"]), policy)]
                connection.execute(
                    insert(RunSigner),
                    [{column: getattr(row, column) for column in SIGNER_COLUMNS} for row in named],
                )
            connection.execute(
                update(Run)
                .where(Run.milestone_id.in_([solo.milestone_id for solo in solos]))
                .values(stage=RunStage.AWAITING_APPROVAL)
            )
        with engine.begin() as connection:
            # The planner's statistics, as a database that grew over years has them (PostgreSQL's
            # autovacuum would take a while to notice a bulk load).
            connection.execute(text("ANALYZE"))
    finally:
        engine.dispose()


def _run(template: Run, created_at: datetime, n: int) -> dict[str, object]:
    awaiting = n % AWAITING_EVERY == 0
    fee = template.snapshot["fee_minor"]
    return {
        "id": f"bench-{n:09d}-{uuid.uuid4().hex[:8]}",
        "kind": template.kind,
        "milestone_id": template.milestone_id,
        "engagement_id": template.engagement_id,
        "snapshot": template.snapshot,
        "stage": RunStage.AWAITING_APPROVAL if awaiting else RunStage.BILLED,
        "gross_minor": None if awaiting else fee,
        "retention_minor": None if awaiting else 0,
        "net_minor": None if awaiting else fee,
        "created_at": created_at,
    }


async def recorded_trigger(driver: Driver, target: Target) -> None:
    """A trigger the API records; with no Temporal it answers 503 (recorded, not yet started)."""
    response = await target.http.post(
        f"/v1/milestones/{target.milestone_id}/triggers",
        json={"source": "bench"},
        headers={**driver.admin, "Idempotency-Key": str(uuid.uuid4())},
    )
    if response.status_code not in (202, 503):
        raise BenchFailure(f"trigger: {response.status_code} {response.text}")


async def timed(reads: int, read: Callable[[], Awaitable[None]]) -> str:
    times = []
    for _ in range(reads):
        sent = time.monotonic()
        await read()
        times.append(time.monotonic() - sent)
    return percentiles(times)


async def main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="tollgate-books-") as tmp, ExitStack() as stack:
        directory = Path(tmp)
        db = stack.enter_context(processes.database(args.database, directory))
        admin_token = secrets.token_urlsafe(24)
        port = processes.free_port()
        env = {
            "TOLLGATE_DATABASE_URL": db.url,
            "TOLLGATE_TEMPORAL_ADDRESS": f"127.0.0.1:{processes.free_port()}",  # nobody there
            "TOLLGATE_ADMIN_TOKEN": admin_token,
            "TOLLGATE_LINK_SECRET": secrets.token_urlsafe(32),
            "TOLLGATE_DATA_DIR": str(directory),
            "TOLLGATE_API_PORT": str(port),
        }
        stack.enter_context(processes.tollgate("api", directory, env, 0))
        processes.wait_for_port(port)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
            driver = Driver([http], admin_token, poll=0.1)
            await driver.people()
            await driver.people("_solo")
            began = time.monotonic()
            await record_runs(driver, db.url, args.runs)
            print(f"{args.runs} runs recorded in {time.monotonic() - began:.1f} s", flush=True)

            async def get(path: str, **params: str) -> httpx.Response:
                response = await http.get(path, params=params, headers=driver.admin)
                if not response.is_success:
                    raise BenchFailure(f"GET {path}: {response.status_code} {response.text}")
                return response

            async def two_pages(**query: str) -> None:
                first = (await get("/v1/runs", limit="50", **query)).json()
                if first["next_cursor"]:
                    await get("/v1/runs", limit="50", cursor=first["next_cursor"], **query)

            async def awaiting_pages() -> None:
                await two_pages(stage=RunStage.AWAITING_APPROVAL)

            async def own_list() -> None:
                _, listed = await driver.approvals("client_solo")
                if listed != SOLO_RUNS:
                    raise BenchFailure(f"client_solo's list holds {listed} runs, not {SOLO_RUNS}")

            async def scrape() -> None:
                await get("/metrics")

            reads = args.reads
            print(f"  runs list, two pages      {await timed(reads, two_pages)}")
            print(f"  awaiting, two pages       {await timed(reads, awaiting_pages)}")
            print(f"  one approver's own list   {await timed(reads, own_list)}")
            print(f"  metrics scrape            {await timed(reads, scrape)}", flush=True)
    return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--runs", type=int, default=300_000, help="runs recorded in the books")
    parser.add_argument("--reads", type=int, default=20, help="reads of each kind, in a row")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))
