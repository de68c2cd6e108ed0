"""``fdp query``: a quick, read-only look at the warehouse (``fdp.warehouse.query``)."""

from __future__ import annotations

import click

from fdp.cli import output
from fdp.cli.main import settings


@click.command()
@click.argument("sql")
@click.option("--warehouse", help="warehouse URL (default: FDP_WAREHOUSE_URL)")
@click.option("--limit", default=50, show_default=True, help="rows to print")
def query(sql: str, warehouse: str | None, limit: int) -> None:
    """Run one read-only query (SELECT, WITH, VALUES, EXPLAIN) and print its first rows.

    Anything that could write, lock, or reach files, the network or server state is refused
    (exit 2) before it reaches the warehouse; a failing query exits 1. FDP_QUERY_TIMEOUT_S
    (60) cancels a long one.
    """
    from fdp.warehouse.connect import connect
    from fdp.warehouse.query import run

    config = settings(warehouse_url=warehouse)
    rows = run(connect(config.warehouse_url, config), sql, limit, config.query_timeout_s)
    names = [output.printable(name) for name in rows.table.column_names]
    values = zip(*(column.to_pylist() for column in rows.table.columns), strict=True)
    output.say(output.table("", names, ([output.printable(v) for v in row] for row in values)))
    n = rows.table.num_rows
    if rows.more:
        output.say(f"first {n:,} rows shown; the result has more (raise --limit to see them)")
    else:
        output.say(f"{n:,} row{'' if n == 1 else 's'}")


COMMANDS = (query,)
