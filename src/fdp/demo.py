"""``fdp demo``: the whole pipeline on the embedded defaults, from an empty data directory.

The simulator lands the demo preset's history as one batch (as a vendor's full download
does), then the same tasks a daily run uses validate, transform, load and reconcile it, and
an HTML report shows the result. Re-running gives the same warehouse rows: every task is
idempotent and the simulated data is fixed by its seed and dates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from fdp import lake, pipeline
from fdp.calendar import next_sessions
from fdp.config import Settings
from fdp.pipeline import TaskResult

PRESET = "demo"


@dataclass(frozen=True, slots=True)
class DemoResult:
    """The tasks' results, the last curated row per symbol, and where the report is."""

    start: dt.date
    end: dt.date
    results: list[TaskResult]
    latest: pl.DataFrame
    rows: int
    report_url: str


def demo_window() -> tuple[dt.date, dt.date]:
    from fdp.sources.symbols import preset

    p = preset(PRESET)
    days = next_sessions(p.start, p.sessions)
    return days[0], days[-1]


def run_demo(
    settings: Settings, on_result: Callable[[TaskResult], None] | None = None
) -> DemoResult:
    """Simulate, validate, transform, load and reconcile the demo data set; write the report."""
    start, end = demo_window()
    results = [pipeline.generate(settings, end, start=start, preset=PRESET)]
    if on_result is not None:
        on_result(results[0])
    results += pipeline.run(settings, end, skip_ingest=True, on_result=on_result)
    curated = lake.scan(settings).filter(pl.col("trade_date").is_between(start, end)).collect()
    report_url = write_report(settings, curated, end)
    latest = curated.sort("trade_date").group_by("symbol", maintain_order=True).last()
    return DemoResult(start, end, results, latest.sort("symbol"), curated.height, report_url)


def write_report(settings: Settings, curated: pl.DataFrame, run_date: dt.date) -> str:
    """Write the report of ``curated`` with the batch's validation results; return its index."""
    from fdp.quality.report import load_report
    from fdp.report import write_report as write

    validation = load_report(settings, "simulator", run_date)
    report = write(
        settings.path("reports", "demo"),
        curated,
        [validation] if validation else [],
        f"fdp demo: {run_date}",
        settings,
    )
    return report.index_url
