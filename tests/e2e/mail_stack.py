"""The whole stack as ``tests/conftest_stack.py`` serves it, but with its worker delivering
notices as they are written: mail to a test SMTP server, approval links pointing at the served
API (so a link in an email opens the page), back-off in milliseconds."""

import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from config import Settings
from db.session import make_engine, make_session_factory
from tests.conftest import database
from tests.conftest_stack import Stack
from tests.e2e.mail import Inbox, free_port
from tests.serving import served
from worker import build_worker


@asynccontextmanager
async def serve_mail_stack(
    backend: str, env: WorkflowEnvironment, directory: Path, inbox: Inbox, **settings: Any
) -> AsyncIterator[Stack]:
    """Migrated database, the API on a port chosen first (it is the links' public URL), and a
    worker with delivery configured; ``settings`` override the defaults below."""
    port = free_port()
    with database(backend, directory) as url:
        config = Settings(
            **{
                "database_url": url,
                "admin_token": secrets.token_urlsafe(24),
                "task_queue": f"tollgate-mail-{backend}-{uuid.uuid4()}",
                "link_secret": secrets.token_urlsafe(32),
                "public_url": f"http://127.0.0.1:{port}",
                "smtp_port": inbox.port,
                "delivery_backoff_seconds": 0.05,
                "delivery_backoff_max_seconds": 0.2,
                "delivery_timeout_seconds": 5,
                **settings,
            }
        )
        engine = make_engine(url)
        sessions = make_session_factory(engine)
        async with (
            served(create_app(config, temporal=env.client), config, port=port),
            build_worker(env.client, sessions, config.task_queue, settings=config),
            httpx.AsyncClient(base_url=config.public_url, timeout=30) as http,
        ):
            yield Stack(
                http,
                config.admin_token or "",
                sessions,
                backend,
                env.client,
                config.task_queue,
                config.link_secret,
            )
        engine.dispose()
