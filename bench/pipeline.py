"""Throughput benchmark: the full pipeline against bare Temporal, side by side, in one run.

    python bench/pipeline.py [--database sqlite|postgresql] [--runs 40] [--concurrency 10]
                             [--worker-processes 1] [--api-processes 1]
                             [--waiting N [--approvers M]]

Starts a Temporal dev server, ``tollgate worker`` and ``tollgate api`` processes on free ports
(and a mail sink for the notices), on a fresh SQLite file or a PostgreSQL database of its own at
127.0.0.1:5432, created and dropped. Drives ``--runs`` runs over HTTP (trigger, two approvals,
until billed), then the same number of bare Temporal runs of the same shape on the same server,
and prints runs/s, latency percentiles, CPU per run per process, RSS, and last the full/bare
ratio. Exits non-zero if a run failed or the money does not add up. Figures, never assertions.

``--waiting N`` starts N runs and leaves them awaiting approval (memory), then times an approver
with one run of its own listing its approvals among them; with ``--approvers M`` M delivery leads
then approve them, M at a time (the decision API's latency on its own).
"""

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from temporalio.client import Client
from temporalio.worker import Worker

from bench import processes
from bench.baseline import BareRun, bare_run, noop
from bench.full import BenchFailure, Driver, Target
from bench.measure import CpuMeter, RunTimes, percentiles, report
from services.mail_sink import start_mail_sink

T = TypeVar("T")


async def bounded(count: int, concurrency: int, work: Callable[[int], Awaitable[T]]) -> list[T]:
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int) -> T:
        async with gate:
            return await work(index)

    return list(await asyncio.gather(*(one(i) for i in range(count))))


class Bench:
    def __init__(self, args: argparse.Namespace, directory: Path, stack: ExitStack) -> None:
        self.args = args
        self.directory = directory
        self.db = stack.enter_context(processes.database(args.database, directory))
        self.temporal_port = processes.free_port()
        self.temporal_pid = stack.enter_context(processes.temporal(directory, self.temporal_port))
        smtp_port = processes.free_port()
        stack.callback(start_mail_sink(directory / "mail", smtp_port))
        self.admin_token = secrets.token_urlsafe(24)
        env = {
            "TOLLGATE_DATABASE_URL": self.db.url,
            "TOLLGATE_TEMPORAL_ADDRESS": f"127.0.0.1:{self.temporal_port}",
            "TOLLGATE_TASK_QUEUE": "tollgate-bench",
            "TOLLGATE_ADMIN_TOKEN": self.admin_token,
            "TOLLGATE_LINK_SECRET": secrets.token_urlsafe(32),
            "TOLLGATE_DATA_DIR": str(directory),
            "TOLLGATE_SMTP_PORT": str(smtp_port),
            "TOLLGATE_WEBHOOK_ALLOW_PRIVATE": "true",
        }
        processes.wait_for_port(self.temporal_port)
        self.worker_pids = [
            stack.enter_context(processes.tollgate("worker", directory, env, i))
            for i in range(args.worker_processes)
        ]
        self.api_ports = [processes.free_port() for _ in range(args.api_processes)]
        self.api_pids = [
            stack.enter_context(
                processes.tollgate("api", directory, {**env, "TOLLGATE_API_PORT": str(port)}, i)
            )
            for i, port in enumerate(self.api_ports)
        ]
        for port in self.api_ports:
            processes.wait_for_port(port, "/healthz")

    def groups(self) -> dict[str, list[int]]:
        groups = {
            "API": self.api_pids,
            "worker": self.worker_pids,
            "Temporal": [self.temporal_pid],
        }
        if self.db.name:
            groups["PostgreSQL"] = self.db.backend_pids()
        return groups

    def print_rss(self) -> None:
        for name, pids in (("worker", self.worker_pids), ("API", self.api_pids)):
            sizes = ", ".join(f"{processes.rss_mib(pid):.0f}" for pid in pids)
            print(f"  RSS {name:<8} {sizes} MiB", flush=True)

    async def full(self, driver: Driver) -> tuple[float, list[Target]]:
        args = self.args
        targets = await bounded(args.runs, args.concurrency, driver.engagement)
        for i in range(2):  # warm up: imports, pools, caches
            await driver.full_run(await driver.engagement(args.runs + i))
        cpu = CpuMeter()
        cpu.start(self.groups())
        start = time.monotonic()
        failures: list[str] = []

        async def attempt(i: int) -> RunTimes | None:
            try:
                return await driver.full_run(targets[i])
            except BenchFailure as failure:  # counted and reported; the others go on
                failures.append(str(failure))
                return None

        outcomes = await bounded(args.runs, args.concurrency, attempt)
        wall = time.monotonic() - start
        cpu.stop(self.groups())
        times = [t for t in outcomes if t is not None]
        rate = report(f"full pipeline ({args.database})", times, wall, cpu)
        for failure in failures:
            print(f"RUN FAILED: {failure}", flush=True)
        self.print_rss()
        return rate, targets

    async def bare(self) -> float:
        args = self.args
        client = await Client.connect(f"127.0.0.1:{self.temporal_port}")
        queue = f"bench-bare-{uuid.uuid4()}"
        async with Worker(client, task_queue=queue, workflows=[BareRun], activities=[noop]):
            prefix = f"bare-{uuid.uuid4()}"
            for i in range(2):
                await bare_run(client, queue, f"{prefix}-warm-{i}", args.poll)
            cpu = CpuMeter()
            groups = {"Temporal": [self.temporal_pid], "bench+worker": [os.getpid()]}
            cpu.start(groups)
            start = time.monotonic()

            async def one(i: int) -> RunTimes:
                return await bare_run(client, queue, f"{prefix}-{i}", args.poll)

            times = await bounded(args.runs, args.concurrency, one)
            wall = time.monotonic() - start
            cpu.stop(groups)
        return report("bare Temporal", times, wall, cpu)

    async def read_billed(self, driver: Driver, targets: list[Target]) -> None:
        """Each billed run's status read once more, as an integrator reads a run after the fact:
        what a read of an ended run costs."""
        cpu = CpuMeter()
        cpu.start(self.groups())

        async def read(i: int) -> float:
            sent = time.monotonic()
            await driver.status(targets[i])
            return time.monotonic() - sent

        times = await bounded(len(targets), self.args.concurrency, read)
        cpu.stop(self.groups())
        print(f"reading a billed run's status ({len(times)} reads)")
        print(f"  read request              {percentiles(times)}")
        for name, seconds in cpu.spent.items():
            print(f"  CPU per read {name:<12} {seconds / len(times) * 1000:7.1f} ms")

    async def waiting(self, driver: Driver) -> None:
        args = self.args
        targets = await bounded(args.waiting, args.concurrency, driver.engagement)

        async def start(i: int) -> None:
            await driver.trigger(targets[i], RunTimes())
            await driver.wait_for(targets[i], "awaiting_approval", patience=600)

        began = time.monotonic()
        await bounded(args.waiting, args.concurrency, start)
        print(f"{args.waiting} runs awaiting approval after {time.monotonic() - began:.1f} s")
        self.print_rss()
        await self.own_list(driver)
        if args.approvers:
            await self.approvers(driver, targets)

    async def own_list(self, driver: Driver, reads: int = 20) -> None:
        """An approver whose one run waits among everyone else's: its own list, read ``reads``
        times one after another (the approver's page of work, however busy the system is)."""
        await driver.people("_solo")
        target = await driver.engagement(0, "_solo")
        await driver.trigger(target, RunTimes())
        await driver.wait_for(target, "awaiting_approval")
        times = []
        for _ in range(reads):
            took, listed = await driver.approvals("client_solo")
            if listed != 1:
                raise BenchFailure(f"client_solo's list holds {listed} runs, not its one")
            times.append(took)
        print(f"  one approver's own list among {self.args.waiting} waiting: {percentiles(times)}")

    async def approvers(self, driver: Driver, targets: list[Target]) -> None:
        """``--approvers`` delivery leads at once, each approving waiting runs one after another
        (the client's approval is left, so the runs go on waiting): the decision API alone."""
        cpu = CpuMeter()
        cpu.start(self.groups())
        began = time.monotonic()

        async def one(i: int) -> float:
            return await driver.approve(targets[i], "delivery_lead", "lead")

        times = await bounded(len(targets), self.args.approvers, one)
        wall = time.monotonic() - began
        cpu.stop(self.groups())
        print(
            f"{len(times)} decisions by {self.args.approvers} concurrent approvers in {wall:.1f} s"
            f" = {len(times) / wall:.1f}/s: {percentiles(times)}",
            flush=True,
        )
        for name, seconds in cpu.spent.items():
            print(f"  CPU per decision {name:<13} {seconds / len(times) * 1000:7.1f} ms")


async def main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="tollgate-bench-") as tmp, ExitStack() as stack:
        bench = Bench(args, Path(tmp), stack)
        limits = httpx.Limits(max_connections=args.concurrency * 2 + 4)
        clients = [
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60, limits=limits)
            for port in bench.api_ports
        ]
        try:
            driver = Driver(clients, bench.admin_token, args.poll)
            await driver.people()
            if args.waiting:
                await bench.waiting(driver)
                return 0
            full_rate, targets = await bench.full(driver)
            await bench.read_billed(driver, targets)
            problems = await driver.check(targets)
            for problem in problems:
                print(f"CHECK FAILED: {problem}", flush=True)
            print(
                f"checks: {len(targets)} billed runs, lines and invoice totals "
                + ("add up" if not problems else f"{len(problems)} problems"),
                flush=True,
            )
            bare_rate = await bench.bare()
            print(
                f"full/bare ratio: {full_rate / bare_rate:.2f} "
                f"({full_rate:.2f} / {bare_rate:.2f} runs/s)",
                flush=True,
            )
            return 1 if problems else 0
        except BenchFailure as failure:
            print(f"BENCH FAILED: {failure}", flush=True)
            return 1
        finally:
            for client in clients:
                await client.aclose()


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--worker-processes", type=int, default=1)
    parser.add_argument("--api-processes", type=int, default=1)
    parser.add_argument(
        "--waiting",
        type=int,
        default=0,
        metavar="N",
        help="start N runs, leave them awaiting approval, print RSS",
    )
    parser.add_argument(
        "--approvers",
        type=int,
        default=0,
        metavar="N",
        help="with --waiting: N approvers decide on the waiting runs at once; decision latency",
    )
    parser.add_argument("--poll", type=float, default=0.1, help="status poll interval, seconds")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))
