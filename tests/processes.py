"""Real processes a fault test can kill: the Temporal dev server and a ``tollgate worker``.

Both are started in their own session (so a signal reaches only them), log to a file in the
test's directory, and are waited on after every kill, so a restart never races its predecessor.
"""

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from workflows import search_attributes as sa

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent
# How a call fails while the client reconnects to a restarted server.
RECONNECTING = (RPCStatusCode.CANCELLED, RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED)


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"(no {path.name})"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Managed:
    """One restartable child process; ``stop`` sends a signal and waits for the exit."""

    name: str
    log: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def _spawn(self, argv: list[str], env: Mapping[str, str] | None = None) -> None:
        assert self.process is None or self.process.poll() is not None, f"{self.name} is running"
        with self.log.open("ab") as out:
            out.write(f"\n--- start #{self.starts + 1}: {' '.join(argv)}\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=ROOT,
                start_new_session=True,
            )
        self.starts += 1

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: signal.Signals = signal.SIGKILL, timeout: float = 20) -> None:
        """Send ``sig`` and wait for the process to exit (SIGKILL after ``timeout``)."""
        if not self.running():
            return
        assert self.process is not None
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=timeout)


@dataclass
class TemporalDevServer(Managed):
    """``temporal server start-dev`` on ``port``, its state in ``db_file`` across restarts."""

    db_file: Path = field(default_factory=Path)
    port: int = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        attributes = [
            arg for key in sa.ALL for arg in ("--search-attribute", f"{key.name}=Keyword")
        ]
        self._spawn(
            [
                str(BIN / "temporal"),
                "server",
                "start-dev",
                "--headless",
                "--ip",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--db-filename",
                str(self.db_file),
                "--log-level",
                "warn",
                *attributes,
            ]
        )

    async def connect(self, patience: float = 30) -> Client:
        """A client once the server answers for the default namespace."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience
        while True:
            if not self.running():
                raise AssertionError(f"the Temporal dev server exited:\n{log_tail(self.log)}")
            try:
                client = await Client.connect(self.address)
                await client.workflow_service.describe_namespace(
                    DescribeNamespaceRequest(namespace=client.namespace)
                )
                return client
            except RuntimeError:  # not listening yet (connection refused, or not ready)
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.2)


@dataclass
class WorkerProcess(Managed):
    """``tollgate worker`` with the given ``TOLLGATE_*`` settings."""

    settings: dict[str, str] = field(default_factory=dict)

    def start(self) -> None:
        self._spawn([str(BIN / "tollgate"), "worker"], env={**os.environ, **self.settings})

    async def wait_polling(self, client: Client, task_queue: str, patience: float = 60) -> None:
        """Until this process (by its pid) polls ``task_queue`` for workflow and activity tasks.

        Temporal lists the pollers of the last few minutes, a killed worker's among them, so
        the identity (``pid@host``) tells the live one apart. Just after Temporal restarts the
        client's first calls may fail while it reconnects: those are asked again."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience
        while True:
            if not self.running():
                raise AssertionError(f"the worker exited:\n{log_tail(self.log)}")
            try:
                if await self._polling(client, task_queue):
                    return
            except RPCError as err:
                if err.status not in RECONNECTING:
                    raise
            if loop.time() > deadline:
                raise AssertionError(f"the worker never polled {task_queue}:\n{log_tail(self.log)}")
            await asyncio.sleep(0.2)

    async def _polling(self, client: Client, task_queue: str) -> bool:
        kinds = (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)
        polling = []
        for kind in kinds:
            described = await client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=client.namespace,
                    task_queue=TaskQueue(name=task_queue),
                    task_queue_type=kind,
                )
            )
            polling.append(any(p.identity.startswith(f"{self.pid}@") for p in described.pollers))
        return all(polling)
