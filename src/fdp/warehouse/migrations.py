"""Numbered schema migrations, applied once each and recorded in ``schema_migrations``.

A migration is a list of statements rendered for the destination's dialect. All pending
migrations run in one transaction under the loader's lock, so two processes starting at once
neither race on CREATE TABLE nor apply a version twice. Append new versions; never edit old ones.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from fdp import indicators
from fdp.records import Column, EnrichedStockRecord
from fdp.warehouse import sql
from fdp.warehouse.base import Session, Warehouse
from fdp.warehouse.sql import Dialect


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: Callable[[Dialect], list[str]]


_INDICATORS_V6 = (
    "rsi_14_avg_gain",
    "rsi_14_avg_loss",
    "rsi_14",
    "macd",
    "macd_signal",
    "macd_hist",
    "bb_upper_20",
    "bb_lower_20",
    "atr_14",
)
_ADDED_LATER = ("ingest_date", *_INDICATORS_V6)
"""Fact columns added by a later migration: version 1 must create the table as it first was."""


def _columns(names: tuple[str, ...], *, added_later: bool) -> tuple[Column, ...]:
    """The built-in record columns named (or, with ``added_later=False``, all but those and
    the user-declared indicators'): migrations never see columns registered after them."""
    builtin = [
        c
        for c in EnrichedStockRecord.columns()
        if c.name not in indicators.columns() or c.name in indicators.BUILTINS
    ]
    return tuple(c for c in builtin if (c.name in names) == added_later)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "fact_stock_prices",
        lambda d: [sql.create_fact(d, _columns(_ADDED_LATER, added_later=False))],
    ),
    Migration(2, "dim_symbol", lambda d: [sql.create_dim_symbol(d)]),
    Migration(
        3,
        "pipeline_runs and dq_results",
        lambda d: [sql.create_pipeline_runs(d), sql.create_dq_results(d)],
    ),
    Migration(
        4,
        "fact_stock_prices.ingest_date",
        lambda d: [sql.add_fact_column(d, c) for c in _columns(("ingest_date",), added_later=True)],
    ),
    Migration(
        5,
        "pipeline_runs.details",
        lambda d: [sql.add_column(sql.PIPELINE_RUNS, "details", d.text)],
    ),
    Migration(
        6,
        "RSI, MACD, Bollinger bands, ATR",
        lambda d: [sql.add_fact_column(d, c) for c in _columns(_INDICATORS_V6, added_later=True)],
    ),
    Migration(
        7,
        "fact_stock_prices_history",
        lambda d: [sql.create_history(), sql.add_history_valid_to()],
    ),
    Migration(8, "corporate_actions", lambda d: [sql.create_corporate_actions(d)]),
    Migration(9, "vendor_calls", lambda d: [sql.create_vendor_calls(d)]),
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
        _add_user_indicators(session, dialect)
        return applied

    return warehouse.run(apply)


def _add_user_indicators(session: Session, dialect: Dialect) -> None:
    """Add a column for every registered indicator the fact and history tables lack:
    user-declared indicators join the warehouse without a numbered migration of their own."""
    for table in (sql.FACT, sql.HISTORY):
        have = {str(row[0]).lower() for row in session.fetchall(sql.table_columns(table))}
        for column in EnrichedStockRecord.columns():
            if column.name not in have and column.name in indicators.columns():
                session.execute(
                    sql.add_column(table, column.name, dialect.sql_type(column.arrow_type))
                )
