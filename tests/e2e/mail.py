"""A real SMTP server (aiosmtpd) for the whole-stack tests, and reading what it received as a
person would: the plain-text and HTML parts, and the links the HTML offers to click."""

import asyncio
import email
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from email.message import Message
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Inbox:
    """Keeps every message the SMTP server receives, with when it arrived."""

    def __init__(self) -> None:
        self.port = 0
        self.messages: list[tuple[float, Message]] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self.messages.append((time.perf_counter(), email.message_from_bytes(envelope.content)))
        return "250 OK"

    async def wait_for(self, matches: Callable[[Message], bool], count: int = 1) -> list[Message]:
        for _ in range(300):
            with self._lock:
                found = [m for _, m in self.messages if matches(m)]
            if len(found) >= count:
                return found
            await asyncio.sleep(0.05)
        raise AssertionError(f"{count} matching message(s) never arrived")


@contextmanager
def smtp_inbox() -> Iterator[Inbox]:
    """An SMTP server on 127.0.0.1 collecting into an Inbox."""
    box = Inbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    box.port = controller.port
    try:
        yield box
    finally:
        controller.stop()


def to(address: str, run_id: str) -> Callable[[Message], bool]:
    """Matches the messages to ``address`` about one run."""
    return lambda m: m["To"] == address and run_id in text_part(m)


def text_part(message: Message) -> str:
    return _part(message, "text/plain")


def html_part(message: Message) -> str:
    return _part(message, "text/html")


def _part(message: Message, content_type: str) -> str:
    part = next(p for p in message.walk() if p.get_content_type() == content_type)
    return part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href, self._text = dict(attrs).get("href"), []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.found.append((self._href, " ".join("".join(self._text).split())))
            self._href = None


def anchors(html: str) -> list[tuple[str, str]]:
    """Every link in ``html`` as (href, the words a reader sees), in order."""
    parser = _Anchors()
    parser.feed(html)
    parser.close()
    return parser.found


def in_new_york(instant: str) -> str:
    """An RFC 3339 instant as the example engagement's emails write it."""
    moment = datetime.fromisoformat(instant).astimezone(ZoneInfo("America/New_York"))
    return moment.strftime("%a %d %b %Y, %H:%M %Z")


def as_emailed(instant: str) -> set[str]:
    """How an email may write a deadline the run also states: the email's deadlines are planned
    from when the run asked for approval (for a manual run, the moment it opened; for a run whose
    criteria are checked first, a moment after the run's own), so it can read a minute on."""
    at = datetime.fromisoformat(instant)
    return {in_new_york((at + timedelta(seconds=late)).isoformat()) for late in (0, 5)}
