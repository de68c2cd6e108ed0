"""``fdp query``: a quick, read-only look at the warehouse."""

from __future__ import annotations

import click

from fdp.cli import output
from fdp.cli.main import settings


@click.command()
@click.argument("sql")
@click.option("--warehouse", help="warehouse URL (default: FDP_WAREHOUSE_URL)")
@click.option("--limit", default=50, show_default=True, help="rows to print")
def query(sql: str, warehouse: str | None, limit: int) -> None:
    """Run one read-only SQL statement on the warehouse and print the rows as a table."""
    from fdp.warehouse.connect import connect

    config = settings(warehouse_url=warehouse)
    result = connect(config.warehouse_url, config).query(sql)
    rows = (row.values() for row in result.slice(0, limit).to_pylist())
    output.say(output.table("", result.column_names, rows))
    if result.num_rows > limit:
        output.say(f"({result.num_rows:,} rows, first {limit} shown)")


COMMANDS = (query,)
