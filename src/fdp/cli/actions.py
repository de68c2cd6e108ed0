"""``fdp actions``: declare corporate actions (``fdp.actions``) and list them."""

from __future__ import annotations

import datetime as dt

import click

from fdp.cli import output
from fdp.cli.main import DATE, settings


@click.group()
def actions() -> None:
    """Corporate actions: splits and dividends the vendor did not report."""


@actions.command()
@click.argument("symbol")
@click.argument("ex_date", type=DATE)
@click.argument("kind", type=click.Choice(["split", "dividend"]))
@click.argument("value")
def add(symbol: str, ex_date: dt.date, kind: str, value: str) -> None:
    """Declare a SPLIT (VALUE NEW:OLD, e.g. 4:1 or 1:10) or a DIVIDEND (VALUE cash per share)
    of SYMBOL on EX_DATE; the symbol's stored history is recomputed with it at once."""
    from fdp import actions as table
    from fdp.transform.recompute import declare

    row = table.action(symbol, ex_date, kind, value)
    done = declare(settings(), row)
    shown = table.ratio_text(row["value"][0]) if kind == "split" else f"{row['value'][0]:g}"
    output.say(f"declared {row['symbol'][0]} {ex_date} {kind} {shown}")
    if done.run_date is None:
        output.say("the lake holds no bar of the symbol yet: the next transform applies it")
    else:
        output.say(
            f"recomputed: {done.rows_written:,} rows changed in {done.partitions_replaced}"
            f" partitions; load them with `fdp load --date {done.run_date}`"
        )


@actions.command(name="list")
@click.option("--symbol", help="only this symbol's actions")
def list_(symbol: str | None) -> None:
    """List the corporate actions: declared ones, and those the vendor's fields carried."""
    import polars as pl

    from fdp import actions as table

    rows = table.known(settings())
    if symbol:
        rows = rows.filter(pl.col("symbol") == symbol.upper())
    cells = [
        (
            s,
            d,
            k,
            table.ratio_text(v) if k == "split" else f"{v:g}",
            source,
            "" if at is None else at.isoformat(timespec="seconds"),
        )
        for s, d, k, v, at, source in rows.iter_rows()
    ]
    output.say(
        output.table(
            f"{len(cells)} corporate actions",
            ["symbol", "ex_date", "kind", "value", "source", "declared_at"],
            cells,
        )
    )


COMMANDS = (actions,)
