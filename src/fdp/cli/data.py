"""``fdp show``: one symbol's curated rows as a table in the terminal (``fdp.data.read``)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, cast

import click

from fdp.cli import output
from fdp.cli.main import DATE, settings

if TYPE_CHECKING:
    from fdp.data import Adjust, Source

BAR = ("open", "high", "low", "close", "volume")
SHOWN = ("daily_return", "sma_20", "sma_50", "ema_12", "ema_26", "volatility_20d", "rsi_14", "macd")
"""The columns shown by default: the bar and the indicators a terminal has room for (any
column of ``fdp.indicators`` can be asked for with --columns)."""


@click.command()
@click.argument("symbol")
@click.option("--start", type=DATE, help="first trade date (default: the first bar)")
@click.option("--end", type=DATE, help="last trade date (default: the last bar)")
@click.option(
    "--columns",
    help="comma-separated columns or indicator names (default: the bar and every indicator)",
)
@click.option(
    "--as-of",
    "as_of",
    type=DATE,
    help="as published after the batches up to this ingest date",
)
@click.option(
    "--adjust",
    type=click.Choice(["raw", "split", "total"]),
    default="raw",
    show_default=True,
    help="prices as traded, split-adjusted, or adjusted for splits and dividends",
)
@click.option(
    "--source", type=click.Choice(["lake", "warehouse"]), default="lake", show_default=True
)
@click.option("--limit", default=30, show_default=True, help="rows to print (the latest)")
def show(
    symbol: str,
    start: dt.date | None,
    end: dt.date | None,
    columns: str | None,
    as_of: dt.date | None,
    adjust: str,
    source: str,
    limit: int,
) -> None:
    """Print SYMBOL's prices and indicators; an unknown symbol, column or empty range exits 2."""
    import polars as pl

    from fdp.data import read

    asked = [c.strip() for c in columns.split(",") if c.strip()] if columns else [*BAR, *SHOWN]
    rows = read(
        symbol,
        start,
        end,
        asked,
        as_of=as_of,
        adjust=cast("Adjust", adjust),
        source=cast("Source", source),
        settings=settings(),
    )
    shown = rows.drop("symbol").tail(limit)
    floats = [n for n, t in shown.schema.items() if t.is_float()]
    cells = shown.with_columns(
        pl.col(floats).map_elements(lambda v: f"{v:,.4f}", return_dtype=pl.String)
    ).iter_rows()
    title = f"{symbol.upper()} {rows.item(0, 'trade_date')} to {rows.item(-1, 'trade_date')}"
    if as_of is not None:
        title += f", as of ingest date {as_of}"
    if adjust != "raw":
        title += f", {adjust}-adjusted"
    numbers = [n for n, t in shown.schema.items() if t.is_numeric()]
    output.say(output.table(title, shown.columns, cells, numbers))
    if shown.height < rows.height:
        output.say(
            f"last {shown.height:,} of {rows.height:,} rows shown (raise --limit to see more)"
        )


COMMANDS = (show,)
