"""The ``fdp`` command line: a thin layer over the stage functions.

Exit status: 0 success, 1 a failed run or quality gate, 2 bad usage or bad input.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.text import Text

from fdp.config import Settings
from fdp.errors import ConfigError, DataError, FdpError
from fdp.sources import SOURCES

F = TypeVar("F", bound=Callable[..., Any])

console = Console(stderr=False)
err_console = Console(stderr=True)


class _Group(click.Group):
    """Turns fdp's errors into one red line and the documented exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (ConfigError, DataError) as exc:
            err_console.print(Text.assemble(("error: ", "red"), str(exc)), soft_wrap=True)
            sys.exit(2)
        except FdpError as exc:
            err_console.print(Text.assemble(("failed: ", "red"), str(exc)), soft_wrap=True)
            sys.exit(1)


class DateType(click.ParamType[dt.date]):
    """An ISO date (YYYY-MM-DD) on the command line."""

    name = "date"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> dt.date:
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not a date (YYYY-MM-DD)", param, ctx)


DATE = DateType()


def source_option(default: str = "simulator") -> Callable[[F], F]:
    """``--source``: which source's raw batches a command reads or lands."""
    return click.option(
        "--source",
        type=click.Choice(SOURCES),
        default=default,
        show_default=True,
        help="raw-zone source of the batch",
    )


@click.group(cls=_Group)
@click.version_option(package_name="fdp")
def main() -> None:
    """fdp: the Financial Data Platform."""


def settings() -> Settings:
    """Settings from the environment; a bad value is a usage error naming the variable."""
    try:
        return Settings()
    except ValueError as exc:
        raise ConfigError(f"invalid FDP_* setting: {exc}") from None


@main.command()
@source_option("alpha_vantage")
@click.option("--symbols", required=True, help="Comma-separated tickers, e.g. AAPL,MSFT.")
@click.option("--date", "day", type=DATE, required=True, help="Ingest date (raw zone partition).")
@click.option(
    "--outputsize",
    type=click.Choice(["compact", "full"]),
    default="compact",
    show_default=True,
    help="compact: the last 100 bars; full: the whole history.",
)
@click.option(
    "--function",
    type=click.Choice(["daily", "daily_adjusted"]),
    default="daily",
    show_default=True,
    help="TIME_SERIES_DAILY (free tier) or TIME_SERIES_DAILY_ADJUSTED (premium).",
)
def ingest(source: str, symbols: str, day: dt.date, outputsize: str, function: str) -> None:
    """Land SYMBOLS from SOURCE for DATE in the raw zone (raw/source=S/ingest_date=D/).

    Prints one line per symbol; exits 1 naming the symbols that failed.
    """
    from rich.progress import Progress
    from rich.table import Table

    from fdp.sources.ingest import IngestOutcome, parse_symbols
    from fdp.sources.ingest import ingest as run_ingest

    tickers = parse_symbols(symbols)
    with Progress(console=err_console, transient=True) as progress:
        task = progress.add_task(f"ingest {source} {day}", total=len(tickers))

        def done(outcome: IngestOutcome) -> None:
            progress.advance(task)

        outcomes = run_ingest(
            settings(),
            source,  # type: ignore[arg-type]
            tickers,
            day,
            function=function,  # type: ignore[arg-type]
            outputsize=outputsize,  # type: ignore[arg-type]
            on_outcome=done,
        )
    table = Table(title=f"ingest {source} {day}")
    for column in ("symbol", "status", "rows", "object / error"):
        table.add_column(column, overflow="fold")
    for o in outcomes:
        status = "[green]ok" if o.ok else "[red]retry later" if o.transient else "[red]failed"
        table.add_row(o.symbol, status, str(o.rows), o.path if o.ok else o.error)
    console.print(table)
    failed = [o.symbol for o in outcomes if not o.ok]
    if failed:
        err_console.print(
            f"[red]failed:[/red] {len(failed)} of {len(outcomes)}: {', '.join(failed)}"
        )
        sys.exit(1)


@main.command()
@click.option("--date", "run_date", type=DATE, help="the run (ingest) date to transform")
@click.option("--start", type=DATE, help="first run date of a range")
@click.option("--end", type=DATE, help="last run date of a range")
@click.option("--engine", type=click.Choice(["polars", "spark"]), help="default: FDP_ENGINE")
@source_option()
def transform(
    run_date: dt.date | None,
    start: dt.date | None,
    end: dt.date | None,
    engine: str | None,
    source: str,
) -> None:
    """Cleanse and enrich raw batches into the curated lake (incremental, idempotent)."""
    from fdp.transform import run_command

    run_command(settings(), run_date, start, end, engine=engine, source=source, console=console)


@main.command()
@click.option("--date", "run_date", type=DATE, help="the run date whose changes to load")
@click.option("--start", type=DATE, help="first run date of a range")
@click.option("--end", type=DATE, help="last run date of a range")
@click.option("--warehouse", help="warehouse URL (default: FDP_WAREHOUSE_URL)")
def load(
    run_date: dt.date | None, start: dt.date | None, end: dt.date | None, warehouse: str | None
) -> None:
    """Load the curated rows a run changed into the warehouse and reconcile them."""
    from fdp.warehouse.commands import load_command

    load_command(settings(), run_date, start, end, warehouse, console)


@main.command()
@click.argument("sql")
@click.option("--warehouse", help="warehouse URL (default: FDP_WAREHOUSE_URL)")
@click.option("--limit", default=50, show_default=True, help="rows to print")
def query(sql: str, warehouse: str | None, limit: int) -> None:
    """Run one SQL statement on the warehouse and print the rows as a table."""
    from fdp.warehouse.commands import query_command

    query_command(settings(), sql, warehouse, limit, console)


@main.command()
@click.option("--preset", help="demo (default), small, medium, large or stress")
@click.option("--symbols", help="comma-separated tickers (default: the preset's)")
@click.option("--universe", type=int, help="simulate N synthetic tickers (SYN00001...)")
@click.option("--start", type=DATE, help="first date (default: the preset's, 2024-01-02)")
@click.option("--end", type=DATE, help="last date (default: start + the preset's sessions)")
@click.option("--days", type=int, help="number of sessions (instead of --end)")
@click.option("--seed", type=int, help="random seed (default: FDP_SEED)")
@click.option("--regime", default="normal", show_default=True, help="normal, bullish, ...")
@click.option("--correlation", help="none, market or matrix (default: the params file's)")
@click.option("--params", "params_file", help="YAML/JSON file of symbol parameters")
@click.option("--format", "fmt", default="json", show_default=True, help="json, parquet, csv")
@click.option("--output", help="CSV file to write (with --format csv)")
@click.option("--ingest-date", type=DATE, help="raw-zone batch date (default: --end)")
def generate(**options: Any) -> None:
    """Simulate GBM market data and land it in the raw zone (or export it as CSV)."""
    from fdp.sources.simulator import generate_command

    generate_command(settings(), console=console, **options)


@main.command()
@click.option("--date", "ingest_date", type=DATE, required=True, help="Ingest date of the batch.")
@source_option()
@click.option(
    "--engine",
    type=click.Choice(["polars", "spark"]),
    default=None,
    help="Validation engine (default: FDP_ENGINE).",
)
def validate(ingest_date: dt.date, source: str, engine: str | None) -> None:
    """Run the quality gate on a raw batch; exit 1 when it fails."""
    from fdp.quality.cli import validate_command

    validate_command(settings(), console, ingest_date, source, engine)


@main.command()
@click.option("--output", default="dist/mwaa", show_default=True, help="bundle directory")
@click.option("--project", default=".", show_default=True, help="fdp's source tree")
def bundle(output: str, project: str) -> None:
    """Build the Amazon MWAA bundle: DAG, plugins.zip with the fdp wheel, requirements, startup."""
    from pathlib import Path

    from fdp.orchestration.bundle import build_bundle

    built = build_bundle(Path(output), Path(project).resolve())
    for path in (built.dag, built.plugins_zip, built.requirements, built.startup, built.pools):
        console.print(f"wrote {path}")


def _results_table(title: str, results: list[Any]) -> Any:
    from rich.table import Table

    table = Table(title=title)
    for column in ("stage", "date", "rows in", "rows out", "rejected", "seconds"):
        table.add_column(column, justify="left" if column in ("stage", "date") else "right")
    for r in results:
        table.add_row(
            r.stage,
            str(r.run_date),
            f"{r.rows_in:,}",
            f"{r.rows_out:,}",
            f"{r.rows_rejected:,}",
            f"{r.duration_s:.2f}",
        )
    return table


def _stage_printer() -> Any:
    def show(result: Any) -> None:
        err_console.print(
            f"[green]✓[/green] {result.stage:<9} {result.run_date}  "
            f"{result.rows_out:>9,} rows  {result.duration_s:6.2f} s",
            highlight=False,
        )

    return show


@main.command()
@click.option("--date", "run_date", type=DATE, required=True, help="the run (data) date")
@source_option()
@click.option("--symbols", help="comma-separated tickers (default: FDP_SYMBOLS or the demo's)")
def run(run_date: dt.date, source: str, symbols: str | None) -> None:
    """Ingest, validate, transform, load and reconcile one date."""
    from fdp import pipeline
    from fdp.sources.ingest import parse_symbols

    tickers = parse_symbols(symbols) if symbols else None
    results = pipeline.run(
        settings(), run_date, source=source, symbols=tickers, on_result=_stage_printer()
    )
    console.print(_results_table(f"fdp run {run_date}", results))


@main.command()
@click.option("--start", type=DATE, required=True, help="first date of the range")
@click.option("--end", type=DATE, required=True, help="last date of the range")
@source_option()
@click.option("--symbols", help="comma-separated tickers (default: FDP_SYMBOLS or the demo's)")
@click.option("--force", is_flag=True, help="re-run sessions that already completed")
def backfill(start: dt.date, end: dt.date, source: str, symbols: str | None, force: bool) -> None:
    """Run every exchange session in [START, END]; completed sessions are skipped."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from fdp import pipeline
    from fdp.calendar import sessions
    from fdp.sources.ingest import parse_symbols

    tickers = parse_symbols(symbols) if symbols else None
    days = sessions(start, end)
    skipped: list[dt.date] = []
    results: list[Any] = []
    columns = (TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task(f"backfill {start} to {end}", total=len(days))

        def advance(day: dt.date, done: list[Any] | None) -> None:
            (skipped.append(day) if done is None else results.extend(done))
            progress.update(task, advance=1, description=f"backfill: {day} done")

        pipeline.backfill(
            settings(), start, end, source=source, symbols=tickers, force=force, on_session=advance
        )
    console.print(_results_table(f"fdp backfill {start} to {end}", results))
    console.print(
        f"{len(days) - len(skipped)} session(s) run, {len(skipped)} already complete (skipped)"
    )


@main.command()
def demo() -> None:
    """The whole pipeline on the demo data set (embedded defaults); writes an HTML report."""
    from rich.table import Table

    from fdp.demo import run_demo

    result = run_demo(settings(), on_result=_stage_printer())
    console.print(_results_table(f"fdp demo {result.start} to {result.end}", result.results))
    table = Table(title=f"last session {result.end}: close and indicators")
    labels = {
        "close": "close",
        "daily_return": "return %",
        "sma_20": "SMA 20",
        "sma_50": "SMA 50",
        "ema_12": "EMA 12",
        "ema_26": "EMA 26",
        "volatility_20d": "vol 20d %",
    }
    columns = tuple(labels)
    table.add_column("symbol")
    for column in columns:
        table.add_column(labels[column], justify="right")
    for row in result.latest.iter_rows(named=True):
        cells = ("-" if row[c] is None else f"{row[c]:,.2f}" for c in columns)
        table.add_row(row["symbol"], *cells)
    console.print(table)
    by_stage = {r.stage: r for r in result.results}
    console.print(
        f"{result.latest.height} symbols, {result.rows:,} curated rows, "
        f"{by_stage['validate'].rows_rejected + by_stage['transform'].rows_rejected} rejected, "
        f"{sum(r.duration_s for r in result.results):.1f} s in all"
    )
    console.print(f"report: {result.report_url}")
