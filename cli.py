"""``tollgate``: the whole local stack in one command, or each part alone.

tollgate dev [--demo]   Temporal dev server (UI on :8233) + worker + API on :8000, SQLite
tollgate api            the API alone (TOLLGATE_* settings)
tollgate worker         the worker alone
tollgate migrate        upgrade the database schema
tollgate reconcile      one reconciler pass now: start unstarted runs, release stale claims
"""

import argparse
import asyncio
import contextlib
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import uvicorn
from temporalio.client import Client

from api.app import create_app
from api.example import load_demo
from config import Settings
from db.migrate import upgrade
from db.session import make_engine, make_session_factory
from services.reconcile import reconcile
from services.runs import STARTERS
from worker import build_worker
from workflows import search_attributes as sa
from workflows.reconcile import ensure_reconcile_schedule
from workflows.schedules import ensure_finalize_schedule


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: ``dev`` stops everything in order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def admin_token(settings: Settings, data: Path) -> str:
    """TOLLGATE_ADMIN_TOKEN, or one generated once and kept in the data folder."""
    if settings.admin_token:
        return settings.admin_token
    path = data / "admin-token"
    if not path.exists():
        path.write_text(f"tga_{secrets.token_urlsafe(32)}\n")
        path.chmod(0o600)
    return path.read_text().strip()


def start_temporal(settings: Settings, data: Path) -> subprocess.Popen[bytes]:
    binary = Path(sys.executable).with_name("temporal")
    attributes = [arg for key in sa.ALL for arg in ("--search-attribute", f"{key.name}=Keyword")]
    log = (data / "temporal.log").open("ab")
    return subprocess.Popen(
        [
            str(binary),
            "server",
            "start-dev",
            "--db-filename",
            str(data / "temporal.db"),
            "--ip",
            "127.0.0.1",
            "--port",
            str(settings.dev_temporal_port),
            "--ui-port",
            str(settings.dev_ui_port),
            "--log-level",
            "warn",
            *attributes,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches us; we stop Temporal last, after the worker
    )


async def connect(address: str, namespace: str, patience_seconds: int = 60) -> Client:
    deadline = asyncio.get_running_loop().time() + patience_seconds
    while True:
        try:
            return await Client.connect(address, namespace=namespace)
        except RuntimeError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)


async def serve(
    settings: Settings,
    *,
    api: bool,
    worker: bool,
    demo: bool = False,
    temporal: subprocess.Popen[bytes] | None = None,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if worker:
        client = await connect(settings.temporal_address, settings.temporal_namespace)
    else:  # the API starts whether or not Temporal is up, and connects once it is
        client = await Client.connect(
            settings.temporal_address, namespace=settings.temporal_namespace, lazy=True
        )
    engine = make_engine(settings.database_url)
    tasks = []
    running_worker = None
    if worker:
        running_worker = build_worker(
            client, make_session_factory(engine), settings.task_queue, settings.issuer_prefix
        )
        tasks.append(asyncio.create_task(running_worker.run()))
        await ensure_finalize_schedule(
            client,
            settings.task_queue,
            settings.finalize_cron,
            settings.issuer_prefix,
            time_zone=settings.finalize_timezone,
        )
        await ensure_reconcile_schedule(
            client, settings.task_queue, settings.reconcile_every_seconds
        )
    server = None
    if api:
        app = create_app(settings, temporal=client)
        config = uvicorn.Config(
            app, host=settings.api_host, port=settings.api_port, log_level="info"
        )
        server = _Server(config)
        tasks.append(asyncio.create_task(server.serve()))
        while not server.started and not tasks[-1].done():
            await asyncio.sleep(0.05)
    if demo and server is not None:
        await announce_demo(settings)
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    print("\nStopping…", flush=True)
    if server is not None:
        server.should_exit = True
    if running_worker is not None:
        await running_worker.shutdown()
    await asyncio.gather(*tasks, return_exceptions=True)
    engine.dispose()
    if temporal is not None:
        temporal.terminate()
        try:
            temporal.wait(timeout=15)
        except subprocess.TimeoutExpired:
            temporal.kill()
    print("Stopped.", flush=True)


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


def dev(demo: bool) -> None:
    settings = Settings()
    data = Path(settings.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    settings = settings.model_copy(
        update={
            "admin_token": admin_token(settings, data),
            "temporal_address": f"127.0.0.1:{settings.dev_temporal_port}",
        }
    )
    upgrade(settings.database_url)
    temporal = start_temporal(settings, data)
    api = f"http://{settings.api_host}:{settings.api_port}"
    print(
        f"""Tollgate local stack
  API          {api}   (docs: {api}/docs)
  Temporal UI  http://127.0.0.1:{settings.dev_ui_port}
  Temporal     {settings.temporal_address}  (state in {data / "temporal.db"})
  Database     {settings.database_url}
  Admin token  {settings.admin_token}
Press Ctrl-C to stop everything.""",
        flush=True,
    )
    try:
        asyncio.run(serve(settings, api=True, worker=True, demo=demo, temporal=temporal))
    finally:
        if temporal.poll() is None:
            temporal.kill()


async def reconcile_now(settings: Settings, grace: timedelta) -> None:
    """The Schedule's pass, by hand: prints what it did."""
    client = await connect(settings.temporal_address, settings.temporal_namespace)
    engine = make_engine(settings.database_url)
    try:
        report = await reconcile(
            make_session_factory(engine), client, settings.task_queue, STARTERS, grace=grace
        )
    finally:
        engine.dispose()
    print("\n".join(report.lines()), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="tollgate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    dev_cmd = commands.add_parser("dev", help="run the whole local stack")
    dev_cmd.add_argument("--demo", action="store_true", help="load the example engagement")
    commands.add_parser("api", help="run the API")
    commands.add_parser("worker", help="run the worker")
    commands.add_parser("migrate", help="upgrade the database schema")
    reconcile_cmd = commands.add_parser("reconcile", help="run one reconciler pass now")
    reconcile_cmd.add_argument(
        "--grace",
        type=int,
        default=120,
        metavar="SECONDS",
        help="leave runs recorded less than this long ago to their own start (default 120)",
    )
    args = parser.parse_args(argv)
    if args.command == "dev":
        dev(args.demo)
        return
    settings = Settings()
    if args.command == "migrate":
        upgrade(settings.database_url)
        return
    if args.command == "reconcile":
        asyncio.run(reconcile_now(settings, timedelta(seconds=args.grace)))
        return
    if args.command == "api" and not settings.admin_token:
        parser.error("set TOLLGATE_ADMIN_TOKEN to run the API")
    asyncio.run(serve(settings, api=args.command == "api", worker=args.command == "worker"))


if __name__ == "__main__":
    main()
