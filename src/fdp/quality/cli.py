"""``fdp validate``: run the gate and print one line per rule, pass or fail."""

from __future__ import annotations

import datetime as dt
from typing import cast

from rich.console import Console
from rich.table import Table

from fdp.config import Engine, Settings
from fdp.quality.report import ValidationReport
from fdp.quality.runner import QualityGateError, run_gate


def summary_table(report: ValidationReport) -> Table:
    table = Table(title=f"{report.suite}: source={report.source} ingest_date={report.ingest_date}")
    table.add_column("rule")
    table.add_column("status")
    table.add_column("unexpected", justify="right")
    table.add_column("mostly", justify="right")
    for r in report.expectations:
        table.add_row(
            r.rule,
            "[green]pass[/green]" if r.success else "[red]FAIL[/red]",
            "" if r.unexpected_count is None else f"{r.unexpected_count:,}",
            "" if r.mostly is None else str(r.mostly),
        )
    return table


def validate_command(
    settings: Settings, console: Console, ingest_date: dt.date, source: str, engine: str | None
) -> ValidationReport:
    """Print the summary and the report links; a failed gate is re-raised for exit 1."""
    try:
        report = run_gate(settings, source, ingest_date, engine=cast(Engine | None, engine))
    except QualityGateError as exc:
        _print(console, exc.report)
        raise
    _print(console, report)
    return report


def _print(console: Console, report: ValidationReport) -> None:
    console.print(summary_table(report))
    verdict = "[green]PASSED[/green]" if report.success else "[red]FAILED[/red]"
    console.print(
        f"{verdict}: {report.successful_count}/{report.evaluated_count} rules,"
        f" {report.row_count:,} rows, {report.rejected_count:,} rejected",
        highlight=False,
    )
    console.print(f"report: {report.html_url}\njson:   {report.json_url}", highlight=False)
