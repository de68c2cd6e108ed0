"""What ``fdp load`` and ``fdp query`` do, kept out of the thin CLI module."""

from __future__ import annotations

import datetime as dt

from rich.console import Console
from rich.table import Table
from rich.text import Text

from fdp.config import Settings
from fdp.errors import ConfigError
from fdp.warehouse.connect import connect
from fdp.warehouse.loader import LoadResult, load_range, load_run


def load_command(
    settings: Settings,
    run_date: dt.date | None,
    start: dt.date | None,
    end: dt.date | None,
    warehouse: str | None,
    console: Console,
) -> list[LoadResult]:
    """Load one date or a range and print one line per run date."""
    if run_date is not None and start is None and end is None:
        results = [load_run(settings, run_date, warehouse)]
    elif run_date is None and start is not None and end is not None:
        results = load_range(settings, start, end, warehouse)
        if not results:
            console.print(f"no run between {start} and {end} has a change manifest")
    else:
        raise ConfigError("give either --date D or both --start A and --end B")
    for r in results:
        console.print(
            f"loaded {r.rows:,} rows of run {r.run_date} into {r.warehouse} "
            f"in {r.seconds:.2f} s (reconciled)"
        )
    return results


def query_command(
    settings: Settings, sql: str, warehouse: str | None, limit: int, console: Console
) -> None:
    """Print the first ``limit`` rows of one read-only statement (``fdp.warehouse.query``) as
    a table, then how many rows there were or that there are more. Names and values are
    printed as plain text: a value holding ``[red]`` or a terminal escape prints literally."""
    from fdp.warehouse.query import run

    rows = run(
        connect(warehouse or settings.warehouse_url, settings),
        sql,
        limit,
        settings.query_timeout_s,
    )
    table = Table(show_lines=False)
    for name in rows.table.column_names:
        table.add_column(_text(name), overflow="fold")
    for record in zip(*(column.to_pylist() for column in rows.table.columns), strict=True):
        table.add_row(*(_text("" if v is None else str(v)) for v in record))
    console.print(table)
    n = rows.table.num_rows
    if rows.more:
        console.print(f"first {n:,} rows shown; the result has more (raise --limit to see them)")
    else:
        console.print(f"{n:,} row{'' if n == 1 else 's'}")


def _text(value: str) -> Text:
    """``value`` as plain text with control characters (terminal escapes, carriage returns)
    shown escaped; line breaks and tabs are kept."""
    return Text("".join(c if c in "\n\t" or c.isprintable() else repr(c)[1:-1] for c in value))
