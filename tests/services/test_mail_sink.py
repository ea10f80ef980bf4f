"""The development mail sink: what Tollgate sends in ``tollgate dev`` can be read as .eml files."""

import email
import socket
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib

from services.mail_sink import start_mail_sink


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_each_message_sent_to_the_sink_becomes_an_eml_file_in_its_folder(tmp_path: Path):
    port, folder = free_port(), tmp_path / "mail"
    stop = start_mail_sink(folder, port)
    try:
        for n in (1, 2):
            message = EmailMessage()
            message["From"], message["To"] = "tollgate@localhost", "client@example.com"
            message["Subject"] = f"Approval requested #{n}"
            message.set_content("Open your link")
            await aiosmtplib.send(message, hostname="127.0.0.1", port=port)
    finally:
        stop()

    files = sorted(folder.glob("*.eml"))
    assert len(files) == 2
    read = [email.message_from_bytes(f.read_bytes()) for f in files]
    assert [m["Subject"] for m in read] == ["Approval requested #1", "Approval requested #2"]
    assert read[0].get_payload().strip() == "Open your link"
