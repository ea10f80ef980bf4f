"""The processes a benchmark starts (Temporal dev server, ``tollgate api``/``worker``), its
database (a SQLite file, or a PostgreSQL database created and dropped), and what /proc says
about each process: CPU seconds and resident memory."""

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg

from db.migrate import upgrade
from workflows import search_attributes as sa

BIN = Path(sys.executable).parent
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime: fields 14 and 15


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Database:
    url: str
    name: str  # the PostgreSQL database's name; "" on SQLite

    def backend_pids(self) -> list[int]:
        """PostgreSQL's server processes serving this database (none on SQLite)."""
        if not self.name:
            return []
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.name,)
            ).fetchall()
        return [row[0] for row in rows]


@contextlib.contextmanager
def database(kind: str, directory: Path) -> Iterator[Database]:
    """A migrated database: a SQLite file in ``directory`` or a PostgreSQL database of its own."""
    if kind == "sqlite":
        url = f"sqlite:///{directory / 'tollgate.db'}"
        upgrade(url)
        yield Database(url, "")
        return
    name = f"tollgate_bench_{secrets.token_hex(4)}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
            upgrade(url)
            yield Database(url, name)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def started(argv: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[int]:
    """A child process for the block's duration, terminated (then killed) after it."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        yield process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def temporal(directory: Path, port: int) -> contextlib.AbstractContextManager[int]:
    attributes = [arg for key in sa.ALL for arg in ("--search-attribute", f"{key.name}=Keyword")]
    argv = [str(BIN / "temporal"), "server", "start-dev", "--headless", "--ip", "127.0.0.1"]
    argv += ["--port", str(port), "--db-filename", str(directory / "temporal.db")]
    argv += ["--log-level", "warn", *attributes]
    return started(argv, directory / "temporal.log")


def tollgate(command: str, directory: Path, env: dict[str, str], index: int):
    """``tollgate api`` or ``tollgate worker`` with the bench's TOLLGATE_* settings."""
    full_env = {**os.environ, **env}
    return started([str(BIN / "tollgate"), command], directory / f"{command}-{index}.log", full_env)


def wait_for_port(port: int, path: str = "", seconds: float = 60) -> None:
    """Until something answers on the port (an HTTP 200 on ``path`` if given)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if path:
                if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).is_success:
                    return
            else:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
        except (OSError, httpx.HTTPError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"nothing answered on port {port} within {seconds} s")
