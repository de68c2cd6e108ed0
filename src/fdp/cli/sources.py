"""``fdp generate`` and ``fdp ingest``: raw data into the raw zone."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from fdp.cli import output
from fdp.cli.main import DATE, settings, source_option


@click.command()
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
def generate(
    symbols: str | None,
    universe: int | None,
    start: dt.date | None,
    end: dt.date | None,
    days: int | None,
    ingest_date: dt.date | None,
    **simulation: Any,
) -> None:
    """Simulate GBM market data and land it in the raw zone (or export it as CSV)."""
    from fdp import pipeline
    from fdp.errors import ConfigError
    from fdp.sources.ingest import parse_symbols
    from fdp.sources.simulator import window
    from fdp.sources.symbols import universe as synthetic_universe

    if symbols is not None and universe is not None:
        raise ConfigError("give --symbols or --universe, not both")
    tickers = parse_symbols(symbols) if symbols is not None else None
    if universe is not None:
        tickers = synthetic_universe(universe)
    first, last = window(preset_name=simulation["preset"], start=start, end=end, days=days)
    result = pipeline.generate(
        settings(), ingest_date or last, start=first, end=last, symbols=tickers, **simulation
    )
    d = result.details
    closes = d["closes"]
    rows = [(s, *("-" if c is None else f"{c:,.4f}" for c in pair)) for s, pair in closes.items()]
    if d["symbols"] > len(closes):
        rows.append((f"... {d['symbols'] - len(closes)} more", "", ""))
    output.say(
        output.table(
            f"simulated {d['start']} to {d['end']}",
            ("symbol", "first close", "last close"),
            rows,
            ("first close", "last close"),
        )
    )
    output.say(
        f"symbols {d['symbols']}  sessions {d['sessions']}  rows {result.rows_out:,}"
        f"  files written {d['files']}" + (f"  ({d['location']})" if d["location"] else "")
    )


@click.command()
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

    from fdp import pipeline
    from fdp.sources.ingest import IngestOutcome, parse_symbols

    tickers = parse_symbols(symbols)
    outcomes: list[IngestOutcome] = []
    try:
        with Progress(console=output.err_console(), transient=True) as progress:
            task = progress.add_task(f"ingest {source} {day}", total=len(tickers))

            def done(outcome: IngestOutcome) -> None:
                outcomes.append(outcome)
                progress.advance(task)

            pipeline.ingest(
                settings(),
                day,
                source=source,
                symbols=tickers,
                function=function,
                outputsize=outputsize,
                on_outcome=done,
            )
    finally:
        if outcomes:
            output.say(_outcomes_table(f"ingest {source} {day}", outcomes))


def _outcomes_table(title: str, outcomes: list[Any]) -> Any:
    def status(o: Any) -> Any:
        if o.ok:
            return output.text("ok", "green")
        return output.text("retry later" if o.transient else "failed", "red")

    return output.table(
        title,
        ("symbol", "status", "rows", "object / error"),
        ((o.symbol, status(o), o.rows, o.path if o.ok else o.error) for o in outcomes),
        ("rows",),
    )


COMMANDS = (generate, ingest)
