"""Smoke tests of the benchmarks: the throughput benchmark runs end to end on SQLite, its own
checks pass, and it ends with the full/bare ratio; the books benchmark fills and reads a database.
No timing is asserted: the figures are for people."""

import subprocess
import sys
from pathlib import Path

import httpx

from bench.full import Driver, Target
from tests.conftest import BIN, unavailable

ROOT = Path(__file__).resolve().parent.parent


def bench(script: str, *argv: str) -> str:
    """A benchmark run to its end as a person runs it; what it printed."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *argv],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_pipeline_benchmark_runs_checks_and_prints_the_ratio_last():
    if not (BIN / "temporal").exists():
        unavailable("the temporal CLI")
    lines = bench("pipeline.py", "--runs", "4", "--concurrency", "2").strip().splitlines()
    assert "checks: 4 billed runs, lines and invoice totals add up" in lines
    assert lines[-1].startswith("full/bare ratio: ")


def test_the_waiting_mode_prints_memory_an_approvers_own_list_and_the_decision_latency():
    if not (BIN / "temporal").exists():
        unavailable("the temporal CLI")
    out = bench("pipeline.py", "--waiting", "3", "--approvers", "2", "--concurrency", "3")
    assert "3 runs awaiting approval after" in out and "RSS worker" in out
    assert "one approver's own list among 3 waiting: p50" in out
    assert "3 decisions by 2 concurrent approvers in" in out and "p99" in out


def test_the_books_benchmark_records_the_runs_and_prints_each_read():
    lines = bench("books.py", "--runs", "2500", "--reads", "2").strip().splitlines()
    assert lines[0].startswith("2500 runs recorded in ")
    assert [line.split("  p50")[0].strip() for line in lines[1:]] == [
        "runs list, two pages",
        "awaiting, two pages",
        "one approver's own list",
        "metrics scrape",
    ]


async def test_the_check_fails_on_a_duplicated_line_and_a_total_that_is_not_its_lines_sum():
    invoice = {
        "total_minor": 2_700_000,
        "lines": [
            {"run_id": "r1", "kind": "milestone", "amount_minor": 3_000_000},
            {"run_id": "r1", "kind": "retention_withheld", "amount_minor": -300_000},
            {"run_id": "r2", "kind": "milestone", "amount_minor": 3_000_000},
            {"run_id": "r2", "kind": "milestone", "amount_minor": 3_000_000},
            {"run_id": "r2", "kind": "retention_withheld", "amount_minor": -300_000},
        ],
    }

    def api(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/v1/runs/"):
            return httpx.Response(200, json={"stage": "billed", "invoice_id": "inv"})
        return httpx.Response(200, json=invoice)

    async with httpx.AsyncClient(base_url="http://api", transport=httpx.MockTransport(api)) as http:
        driver = Driver([http], "admin", poll=0.01)
        problems = await driver.check([Target(http, "m1", "r1"), Target(http, "m2", "r2")])
    assert problems == [
        "run r2 has lines ['milestone', 'milestone', 'retention_withheld']",
        "invoice inv: total 2700000 ≠ lines 8400000",
    ]
