"""The address rule again at send time (DNS can change after registration): a webhook whose URL
now is or resolves to a non-public address is not posted; the attempt is recorded as a permanent
failure, so the notification is dead at once instead of retried. A redirect is never followed:
it could point anywhere, past the check. A name is posted to the address that was checked, over
TLS verified against the name."""

import asyncio
import re
import socket
import ssl
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from config import Settings
from db.models import Notification, NotificationAttempt, WebhookEndpoint, new_id
from services.delivery import deliver
from services.notices import Notice, NoticeKind, queue
from services.senders import DeliveryConfig
from services.webhook_targets import pinned
from tests.conftest_stack import Example

GUARDED = replace(
    DeliveryConfig.from_settings(Settings(webhook_allow_private=False)),
    max_attempts=5,
    timeout_seconds=2,
)
LOCAL_ALLOWED = replace(GUARDED, webhook_allow_private=True)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A local port that accepts connections: a post that got through would reach it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        sock.setblocking(False)
        yield sock


def queued_webhook(example: Example, url: str) -> int:
    with example.stack.sessions.begin() as session:
        endpoint = WebhookEndpoint(
            id=new_id("whe"),
            url=url,
            events=["run_billed"],
            secret="whsec_" + "a" * 32,
            engagement_id=example.engagement["id"],
        )
        session.add(endpoint)
    notice = Notice(
        kind=NoticeKind.RUN_BILLED,
        run_id=f"run-{new_id('test')}",
        run_kind="milestone",
        engagement_id=example.engagement["id"],
        headline="Phase 1 billed",
    )
    with example.stack.sessions.begin() as session:
        ids = queue(session, notice, [])
        return next(i for i in ids if session.get_one(Notification, i).recipient_id == endpoint.id)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_a_webhook_to_a_private_address_is_dead_after_one_attempt_and_nothing_is_sent(
    example: Example, listener: socket.socket, host: str
):
    port = listener.getsockname()[1]
    row_id = queued_webhook(example, f"http://{host}:{port}/hook")

    attempted = await deliver(example.stack.sessions, row_id, GUARDED)

    assert (attempted.status, attempted.attempts) == ("dead", 1)
    with example.stack.sessions() as session:
        row = session.get_one(Notification, row_id)
        [attempt] = session.scalars(
            select(NotificationAttempt).where(NotificationAttempt.notification_id == row_id)
        ).all()
    assert attempt.outcome == "failed" and attempt.response_code is None
    assert row.last_error == attempt.error
    assert f"refused: {host} is a loopback address" in (row.last_error or "")
    with pytest.raises(BlockingIOError):
        listener.accept()  # nobody connected


async def test_a_redirect_is_a_failed_attempt_and_is_not_followed(
    example: Example, listener: socket.socket
):
    elsewhere = f"http://127.0.0.1:{listener.getsockname()[1]}/internal"

    async def redirect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 307 Temporary Redirect\r\nLocation: " + elsewhere.encode() + b"\r\n"
            b"Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(redirect, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        row_id = queued_webhook(example, f"http://127.0.0.1:{port}/hook")
        attempted = await deliver(example.stack.sessions, row_id, LOCAL_ALLOWED)

    assert (attempted.status, attempted.attempts) == ("pending", 1)
    with example.stack.sessions() as session:
        assert (session.get_one(Notification, row_id).last_error or "").startswith("HTTP 307")
    with pytest.raises(BlockingIOError):
        listener.accept()  # the redirect's target was never asked


def self_signed(name: str) -> tuple[str, bytes]:
    """A certificate for ``name`` (PEM) that is its own authority, and its key (PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    return certificate.public_bytes(Encoding.PEM).decode(), pem_key


async def test_a_name_is_posted_to_the_checked_address_and_tls_verifies_the_name(tmp_path: Path):
    name = "hooks.tollgate.test"  # resolves nowhere: only the checked address is dialled
    certificate, key = self_signed(name)
    (tmp_path / "cert.pem").write_text(certificate)
    (tmp_path / "key.pem").write_bytes(key)
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    hosts: list[str] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        hosts.extend(re.findall(r"^host: *(\S+)", head, re.IGNORECASE | re.MULTILINE))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=served)
    async with server:
        port = server.sockets[0].getsockname()[1]
        target = pinned(httpx.URL(f"https://{name}:{port}/hook"), ip_address("127.0.0.1"))
        trusting = ssl.create_default_context(cadata=certificate)
        async with httpx.AsyncClient(verify=trusting) as http:
            response = await http.post(
                target.url, content=b"{}", headers=target.headers, extensions=target.extensions
            )
            impostor = pinned(
                httpx.URL(f"https://other.tollgate.test:{port}/hook"), ip_address("127.0.0.1")
            )
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await http.post(
                    impostor.url,
                    content=b"{}",
                    headers=impostor.headers,
                    extensions=impostor.extensions,
                )

    assert response.status_code == 200
    assert hosts == [f"{name}:{port}"]
