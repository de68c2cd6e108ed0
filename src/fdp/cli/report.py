"""``fdp report``: the charts of curated prices as an HTML report (``fdp.report``)."""

from __future__ import annotations

import datetime as dt

import click

from fdp.cli import output
from fdp.cli.main import DATE, settings


@click.command()
@click.option("--symbols", help="comma-separated tickers (default: every symbol with rows)")
@click.option("--start", type=DATE, required=True, help="first trade date shown")
@click.option("--end", type=DATE, required=True, help="last trade date shown")
@click.option(
    "--output",
    "target",
    help="report directory, a path or s3://... (default: <FDP_DATA_DIR>/reports/charts/START_END)",
)
def report(symbols: str | None, start: dt.date, end: dt.date, target: str | None) -> None:
    """Write candlestick charts (moving averages, volume, volatility, quality flags) of the
    curated lake: an index page and one page per symbol, viewable offline.

    An unknown symbol or a range without rows is an error (exit 2).
    """
    from fdp.report import build_report
    from fdp.sources.ingest import parse_symbols

    tickers = parse_symbols(symbols) if symbols else None
    built = build_report(settings(), start, end, tickers, target)
    output.say(
        f"{built.symbols:,} symbol page(s), {built.rows:,} rows, {built.batches:,} quality "
        f"report(s), {built.bytes_written / 1e6:.1f} MB"
    )
    output.say(f"report: {built.index_url}")


COMMANDS = (report,)
