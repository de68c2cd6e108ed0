"""Timing and peak-memory measurement shared by the benchmark stages."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import resource
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "results.jsonl"


@dataclass
class Measurement:
    """One timed step: wall seconds, rows processed, and the peak RSS during the step."""

    stage: str
    step: str
    rows: int
    seconds: float
    peak_rss_mib: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else float("inf")


def peak_rss_mib() -> float:
    """Peak resident memory of this process (and reaped children) since the last
    ``reset_peak_rss``, or since it started where the peak cannot be reset, in MiB."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, kids)
    high_water = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return max(int(high_water.split()[1]) / 1024, kids)


def reset_peak_rss() -> None:
    """Start a new peak (Linux: ``clear_refs`` 5 resets VmHWM), so each step reports its own."""
    with suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


@contextmanager
def measure(stage: str, step: str, rows: int, out: list[Measurement]) -> Iterator[dict[str, Any]]:
    """Time the body and its peak memory; the yielded dict collects extra numbers to report
    beside the time."""
    extra: dict[str, Any] = {}
    reset_peak_rss()
    start = time.perf_counter()
    yield extra
    out.append(Measurement(stage, step, rows, time.perf_counter() - start, peak_rss_mib(), extra))


def timed(stage: str, step: str, rows: int, out: list[Measurement], fn: Callable[[], Any]) -> Any:
    with measure(stage, step, rows, out):
        return fn()


def report(results: list[Measurement]) -> None:
    """Print a table and append the results, with the machine's load, to the results file."""
    load = os.getloadavg()
    print(f"{'stage':<12} {'step':<34} {'rows':>12} {'seconds':>9} {'rows/s':>12} {'peak MiB':>9}")
    for r in results:
        print(
            f"{r.stage:<12} {r.step:<34} {r.rows:>12,} {r.seconds:>9.2f} {r.rows_per_s:>12,.0f}"
            f" {r.peak_rss_mib:>9,.0f}  {json.dumps(r.extra) if r.extra else ''}"
        )
    print(f"load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; cpus: {os.cpu_count()}")
    RESULTS.parent.mkdir(exist_ok=True)
    with RESULTS.open("a") as fh:
        for r in results:
            row = asdict(r) | {
                "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "load1": load[0],
                "machine": platform.node(),
            }
            fh.write(json.dumps(row) + "\n")
