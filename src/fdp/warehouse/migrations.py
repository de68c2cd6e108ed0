"""Numbered schema migrations, applied once each and recorded in ``schema_migrations``.

A migration is a list of statements rendered for the destination's dialect. All pending
migrations run in one transaction under the loader's lock, so two processes starting at once
neither race on CREATE TABLE nor apply a version twice. Append new versions; never edit old ones.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from fdp.records import EnrichedStockRecord
from fdp.warehouse import sql
from fdp.warehouse.base import Session, Warehouse
from fdp.warehouse.sql import Dialect


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: Callable[[Dialect], list[str]]


_ADDED_LATER = ("ingest_date",)
"""Fact columns added by a later migration: version 1 must create the table as it first was."""
_FACT_V1 = tuple(c for c in EnrichedStockRecord.columns() if c.name not in _ADDED_LATER)
_INGEST_DATE = next(c for c in EnrichedStockRecord.columns() if c.name == "ingest_date")

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "fact_stock_prices", lambda d: [sql.create_fact(d, _FACT_V1)]),
    Migration(2, "dim_symbol", lambda d: [sql.create_dim_symbol(d)]),
    Migration(
        3,
        "pipeline_runs and dq_results",
        lambda d: [sql.create_pipeline_runs(d), sql.create_dq_results(d)],
    ),
    Migration(4, "fact_stock_prices.ingest_date", lambda d: [sql.add_fact_column(d, _INGEST_DATE)]),
    Migration(
        5,
        "pipeline_runs.details",
        lambda d: [sql.add_column(sql.PIPELINE_RUNS, "details", d.text)],
    ),
    Migration(6, "vendor_calls", lambda d: [sql.create_vendor_calls(d)]),
)


def migrate(warehouse: Warehouse) -> list[int]:
    """Apply the pending migrations; return the versions applied now (empty when current)."""
    dialect = warehouse.dialect

    def apply(session: Session) -> list[int]:
        if dialect.load_lock:
            session.execute(dialect.load_lock)
        session.execute(sql.create_migrations(dialect))
        done = {int(row[0]) for row in session.fetchall(sql.select_migrations())}
        applied = []
        for migration in MIGRATIONS:
            if migration.version in done:
                continue
            for statement in migration.statements(dialect):
                session.execute(statement)
            session.execute(
                sql.insert_migration(dialect),
                (migration.version, migration.name, dt.datetime.now(dt.UTC)),
            )
            applied.append(migration.version)
        return applied

    return warehouse.run(apply)
