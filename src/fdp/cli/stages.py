"""The stage commands and the runs: each calls ``fdp.pipeline`` and prints what it returns."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import click

from fdp.cli import output
from fdp.cli.main import DATE, date_options, one_date_or_range, settings, source_option

if TYPE_CHECKING:
    from fdp.quality.report import ValidationReport

ENGINE = click.Choice(["polars", "spark"])


@click.command()
@click.option("--date", "run_date", type=DATE, required=True, help="Ingest date of the batch.")
@source_option()
@click.option("--engine", type=ENGINE, help="Validation engine (default: FDP_ENGINE).")
def validate(run_date: dt.date, source: str | None, engine: str | None) -> None:
    """Run the quality gate on a raw batch; exit 1 when it fails."""
    from fdp import pipeline
    from fdp.quality.errors import QualityGateError
    from fdp.quality.report import load_report

    config = settings()
    try:
        result = pipeline.validate(config, run_date, source=source, engine=engine)
    except QualityGateError as exc:
        _print_report(exc.report)
        raise
    report = load_report(config, result.details["source"], run_date)
    if report is not None:
        _print_report(report)


def _print_report(report: ValidationReport) -> None:
    rows = (
        (
            r.rule,
            output.text("pass", "green") if r.success else output.text("FAIL", "red"),
            "" if r.unexpected_count is None else f"{r.unexpected_count:,}",
            "" if r.mostly is None else r.mostly,
        )
        for r in report.expectations
    )
    title = f"{report.suite}: source={report.source} ingest_date={report.ingest_date}"
    columns = ("rule", "status", "unexpected", "mostly")
    output.say(output.table(title, columns, rows, columns[2:]))
    from rich.text import Text

    ok = report.success
    output.say(
        Text.assemble(
            ("PASSED" if ok else "FAILED", "green" if ok else "red"),
            output.text(
                f": {report.successful_count}/{report.evaluated_count} rules,"
                f" {report.row_count:,} rows, {report.rejected_count:,} rejected"
            ),
        )
    )
    output.say(f"report: {report.html_url}\njson:   {report.json_url}")


@click.command()
@date_options("to transform")
@click.option("--engine", type=ENGINE, help="default: FDP_ENGINE")
@source_option()
@click.option(
    "--override-gate",
    metavar="REASON",
    help="transform a batch whose quality gate failed (recorded in pipeline_runs)",
)
def transform(
    run_date: dt.date | None,
    start: dt.date | None,
    end: dt.date | None,
    engine: str | None,
    source: str | None,
    override_gate: str | None,
) -> None:
    """Cleanse and enrich raw batches into the curated lake (incremental, idempotent).

    A batch is transformed only after a passing validation of exactly its raw objects: one
    never validated is validated first; a failed one is refused.
    """
    from fdp import pipeline

    config = settings()
    dates = one_date_or_range(run_date, start, end)
    if isinstance(dates, dt.date):
        days, source = [dates], pipeline.resolve_source(config, dates, source)
    else:
        source, days = pipeline.batches_between(config, *dates, source)
    results = _each(
        days,
        "transform",
        lambda day: pipeline.transform(
            config, day, source=source, engine=engine, override_gate=override_gate
        ),
    )
    written = sum(r.rows_out for r in results)
    output.say(
        f"transform {source} {days[0]}..{days[-1]}: {len(results)} batch(es), rows in"
        f" {sum(r.rows_in for r in results):,}, rejected {sum(r.rows_rejected for r in results):,},"
        f" written {written:,}, partitions replaced"
        f" {sum(r.details['partitions_replaced'] for r in results):,}"
        f" in {sum(r.duration_s for r in results):.1f} s"
    )


def _each(days: list[dt.date], what: str, task: Any) -> list[Any]:
    """``task`` for every day, oldest first, with a progress bar; the first failure stops."""
    from rich.progress import Progress

    results = []
    with Progress(console=output.err_console(), transient=True) as progress:
        bar = progress.add_task(what, total=len(days))
        for day in days:
            progress.update(bar, description=f"{what} {day}")
            results.append(task(day))
            progress.advance(bar)
    return results


@click.command()
@date_options("whose changes to load")
@click.option("--warehouse", help="warehouse URL (default: FDP_WAREHOUSE_URL)")
def load(
    run_date: dt.date | None, start: dt.date | None, end: dt.date | None, warehouse: str | None
) -> None:
    """Load the curated rows a run changed into the warehouse, reconciled row by row."""
    from fdp import pipeline

    config = settings(warehouse_url=warehouse)
    dates = one_date_or_range(run_date, start, end)
    days = [dates] if isinstance(dates, dt.date) else pipeline.loads_between(config, *dates)
    for result in _each(days, "load", lambda day: pipeline.load(config, day)):
        output.say(
            f"loaded {result.rows_out:,} rows of run {result.run_date} into"
            f" {result.details['warehouse']} in {result.duration_s:.2f} s (reconciled)"
        )


@click.command()
@click.option("--date", "run_date", type=DATE, required=True, help="the run (data) date")
@source_option("simulator")
@click.option("--symbols", help="comma-separated tickers (default: FDP_SYMBOLS or the demo's)")
def run(run_date: dt.date, source: str, symbols: str | None) -> None:
    """Ingest, validate, transform, load and reconcile one date."""
    from fdp import pipeline
    from fdp.sources.ingest import parse_symbols

    tickers = parse_symbols(symbols) if symbols else None
    results = pipeline.run(
        settings(), run_date, source=source, symbols=tickers, on_result=output.stage_line
    )
    output.say(output.results_table(f"fdp run {run_date}", results))


@click.command()
@click.option("--start", type=DATE, help="first date of the range")
@click.option("--end", type=DATE, help="last date of the range")
@source_option("simulator")
@click.option("--symbols", help="comma-separated tickers (default: FDP_SYMBOLS or the demo's)")
@click.option("--force", is_flag=True, help="re-run sessions that already completed")
@click.option(
    "--indicators",
    help="comma-separated indicators to compute over the lake's history (only their columns; "
    "--start/--end, optional here, limit the rows written)",
)
def backfill(
    start: dt.date | None,
    end: dt.date | None,
    source: str,
    symbols: str | None,
    force: bool,
    indicators: str | None,
) -> None:
    """Run every exchange session in [START, END]; completed sessions are skipped.

    With --indicators, compute those indicators (added since the lake was built) instead."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from fdp import pipeline
    from fdp.sources.ingest import parse_symbols

    if indicators is not None:
        names = [n.strip() for n in indicators.split(",") if n.strip()]
        done = pipeline.backfill_indicators(settings(), names, start=start, end=end)
        output.say(output.results_table(f"fdp backfill --indicators {','.join(names)}", done))
        return
    if start is None or end is None:
        raise click.UsageError("--start and --end are required (unless --indicators)")
    pipeline.check_range(start, end)
    tickers = parse_symbols(symbols) if symbols else None
    skipped: list[dt.date] = []
    results: list[Any] = []
    columns = (TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn())
    with Progress(*columns, console=output.err_console(), transient=True) as progress:
        task = progress.add_task(f"backfill {start} to {end}", total=None)

        def advance(day: dt.date, done: list[Any] | None) -> None:
            (skipped.append(day) if done is None else results.extend(done))
            progress.update(task, advance=1, description=f"backfill: {day} done")

        outcome = pipeline.backfill(
            settings(), start, end, source=source, symbols=tickers, force=force, on_session=advance
        )
    output.say(output.results_table(f"fdp backfill {start} to {end}", results))
    output.say(
        f"{len(outcome) - len(skipped)} session(s) run, {len(skipped)} already complete (skipped)"
    )


@click.command()
def demo() -> None:
    """The whole pipeline on the demo data set (embedded defaults); writes an HTML report."""
    from fdp.demo import run_demo

    result = run_demo(settings(), on_result=output.stage_line)
    output.say(output.results_table(f"fdp demo {result.start} to {result.end}", result.results))
    labels = {
        "close": "close",
        "daily_return": "return %",
        "sma_20": "SMA 20",
        "sma_50": "SMA 50",
        "ema_12": "EMA 12",
        "ema_26": "EMA 26",
        "volatility_20d": "vol 20d %",
    }
    rows = (
        (row["symbol"], *("-" if row[c] is None else f"{row[c]:,.2f}" for c in labels))
        for row in result.latest.iter_rows(named=True)
    )
    title = f"last session {result.end}: close and indicators"
    output.say(output.table(title, ("symbol", *labels.values()), rows, labels.values()))
    by_stage = {r.stage: r for r in result.results}
    output.say(
        f"{result.latest.height} symbols, {result.rows:,} curated rows, "
        f"{by_stage['validate'].rows_rejected + by_stage['transform'].rows_rejected} rejected, "
        f"{sum(r.duration_s for r in result.results):.1f} s in all"
    )
    output.say(f"report: {result.report_url}")


COMMANDS = (validate, transform, load, run, backfill, demo)
