"""What ``fdp load`` and ``fdp query`` do, kept out of the thin CLI module."""

from __future__ import annotations

import datetime as dt

from rich.console import Console
from rich.table import Table

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
    """Print the first ``limit`` rows of ``sql``'s result as a rich table."""
    result = connect(warehouse or settings.warehouse_url, settings).query(sql)
    table = Table(*result.column_names, show_lines=False)
    for row in result.slice(0, limit).to_pylist():
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    console.print(table)
    if result.num_rows > limit:
        console.print(f"({result.num_rows:,} rows, first {limit} shown)")
