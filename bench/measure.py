"""What a benchmark phase measured: per-run latencies, throughput, CPU per run per process."""

import statistics
from dataclasses import dataclass, field

from bench.processes import cpu_seconds


@dataclass
class RunTimes:
    trigger: float = 0.0  # the trigger request (HTTP, or starting the workflow)
    to_awaiting: float = 0.0  # trigger sent → the run awaits approval
    decisions: list[float] = field(default_factory=list)  # each decision request
    to_billed: float = 0.0  # second approval answered → billed


def percentiles(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        p50 = p95 = p99 = values[0]
    else:
        cuts = statistics.quantiles(values, n=100, method="inclusive")
        p50, p95, p99 = cuts[49], cuts[94], cuts[98]
    return f"p50 {p50 * 1000:7.0f} ms  p95 {p95 * 1000:7.0f} ms  p99 {p99 * 1000:7.0f} ms"


class CpuMeter:
    """CPU seconds each named group of processes spent between ``start`` and ``stop``; a
    process first seen at ``stop`` counts whole, one gone by ``stop`` counts nothing (its last
    figures are lost with it: PostgreSQL backends come and go)."""

    def __init__(self) -> None:
        self.before: dict[str, dict[int, float]] = {}
        self.spent: dict[str, float] = {}

    def start(self, groups: dict[str, list[int]]) -> None:
        self.before = {
            name: {pid: cpu_seconds(pid) for pid in pids} for name, pids in groups.items()
        }

    def stop(self, groups: dict[str, list[int]]) -> None:
        for name, pids in groups.items():
            earlier = self.before.get(name, {})
            alive = set(pids) | set(earlier)
            self.spent[name] = sum(
                max(cpu_seconds(pid) - earlier.get(pid, 0.0), 0.0) for pid in alive
            )


def report(label: str, times: list[RunTimes], wall: float, cpu: CpuMeter) -> float:
    """Prints a phase's figures; returns its runs/s."""
    rate = len(times) / wall if wall else 0.0
    print(f"{label}: {len(times)} runs in {wall:.1f} s = {rate:.2f} runs/s", flush=True)
    print(f"  trigger request           {percentiles([t.trigger for t in times])}")
    print(f"  trigger → awaiting        {percentiles([t.to_awaiting for t in times])}")
    print(f"  decision request          {percentiles([d for t in times for d in t.decisions])}")
    print(f"  2nd approval → billed     {percentiles([t.to_billed for t in times])}")
    for name, seconds in cpu.spent.items():
        print(f"  CPU per run {name:<13} {seconds / max(len(times), 1) * 1000:7.1f} ms")
    return rate
