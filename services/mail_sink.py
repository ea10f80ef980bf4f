"""A local SMTP server for development: every message it receives becomes an ``.eml`` file, so
the emails Tollgate sends can be opened with any mail reader (or read as text)."""

from collections.abc import Callable
from datetime import UTC, datetime
from itertools import count
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

__all__ = ["start_mail_sink"]


class _EmlWriter:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._numbers = count(1)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        path = self.directory / f"{stamp}-{next(self._numbers):04d}.eml"
        content = envelope.original_content or b""
        path.write_bytes(content)
        return "250 Message accepted for delivery"


def start_mail_sink(directory: Path, port: int, host: str = "127.0.0.1") -> Callable[[], None]:
    """Serve SMTP on ``host:port`` (in a thread of its own), writing each message to
    ``directory``; returns the function that stops it."""
    directory.mkdir(parents=True, exist_ok=True)
    controller = Controller(_EmlWriter(directory), hostname=host, port=port)
    controller.start()
    return controller.stop
