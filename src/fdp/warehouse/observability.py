"""Rows the dashboards and alerts read: one per task run (``pipeline_runs``), one per
expectation per batch (``dq_results``), the vendor calls of each UTC day against its quota
(``vendor_calls``), and the symbol dimension (``dim_symbol``).

Each writer replaces what it writes (delete, then insert, in one transaction), so re-running
a task for a date leaves one row per (stage, run_date) and one per (batch, expectation).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from fdp.sources.symbols import symbol_parameters
from fdp.warehouse import sql
from fdp.warehouse.base import Session, Warehouse


@dataclass(frozen=True, slots=True)
class PipelineRun:
    """One task run; ``error`` and ``details`` are already free of secrets."""

    stage: str
    run_date: dt.date
    run_id: str
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    rows_in: int | None = None
    rows_out: int | None = None
    rows_rejected: int | None = None
    duration_s: float | None = None
    error: str | None = None
    details: str | None = None
    """JSON: the run's options (source, engine, an overridden gate) and, on failure, the
    error's class and where it happened (file, symbol, date, field, hint)."""


@dataclass(frozen=True, slots=True)
class DqResult:
    """One expectation's outcome on one batch; ``column`` is None for table-level ones."""

    expectation: str
    column: str | None
    success: bool
    element_count: int | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    observed_value: str | None = None


@dataclass(frozen=True, slots=True)
class SymbolInfo:
    symbol: str
    name: str | None = None
    sector: str | None = None
    industry: str | None = None
    exchange: str | None = None
    currency: str | None = None


def record_pipeline_run(warehouse: Warehouse, run: PipelineRun) -> None:
    """Store ``run`` as the one row of its (stage, run_date)."""
    d = warehouse.dialect
    values = tuple(getattr(run, name) for name in sql.PIPELINE_RUN_COLUMNS)

    def write(session: Session) -> None:
        session.execute(sql.delete_pipeline_run(d), (run.stage, run.run_date))
        session.execute(sql.insert_pipeline_run(d), values)

    warehouse.run(write)


def record_vendor_calls(
    warehouse: Warehouse, source: str, day: dt.date, calls: int, quota: int
) -> None:
    """Store the calls made to ``source`` on UTC ``day`` and its daily quota, replacing the
    day's earlier count (the count itself lives with the client's rate limiter)."""
    d = warehouse.dialect
    row = (source, day, calls, quota, dt.datetime.now(dt.UTC))

    def write(session: Session) -> None:
        session.execute(sql.delete_vendor_calls(d), (source, day))
        session.execute(sql.insert_vendor_calls(d), row)

    warehouse.run(write)


def record_dq_results(
    warehouse: Warehouse, run_date: dt.date, source: str, results: Sequence[DqResult]
) -> None:
    """Replace the results of batch (run_date, source) with ``results``."""
    d = warehouse.dialect
    now = dt.datetime.now(dt.UTC)
    rows = [
        (
            run_date,
            source,
            r.expectation,
            r.column or "",
            r.success,
            r.element_count,
            r.unexpected_count,
            r.unexpected_percent,
            r.observed_value,
            now,
        )
        for r in results
    ]

    def write(session: Session) -> None:
        session.execute(sql.delete_dq_batch(d), (run_date, source))
        session.executemany(sql.insert_dq_result(d), rows)

    warehouse.run(write)


def upsert_symbols(warehouse: Warehouse, infos: Iterable[SymbolInfo]) -> None:
    """Store each symbol's descriptive attributes, replacing what was there (in two
    statements where arrays can be parameters: a first load's 4,000 symbols took 4 s one
    statement per row on DuckDB)."""
    d = warehouse.dialect
    now = dt.datetime.now(dt.UTC)
    rows = [(i.symbol, i.name, i.sector, i.industry, i.exchange, i.currency, now) for i in infos]

    def write(session: Session) -> None:
        if d.array_params:
            session.execute(sql.delete_symbols(d), ([r[0] for r in rows],))
            session.execute(
                sql.insert_symbols(d), [list(column) for column in zip(*rows, strict=True)]
            )
            return
        for row in rows:
            session.execute(sql.delete_symbol(d), (row[0],))
        session.executemany(sql.insert_symbol(d), rows)

    if rows:
        warehouse.run(write)


def known_symbols(session: Session) -> set[str]:
    return {str(row[0]) for row in session.fetchall(sql.select_symbols())}


def symbol_info(symbol: str) -> SymbolInfo:
    """What the simulator's parameters say of ``symbol`` (name, sector, exchange...)."""
    params = symbol_parameters(symbol)
    fields = ("name", "sector", "industry", "exchange", "currency")
    return SymbolInfo(symbol, **{f: getattr(params, f, None) for f in fields})


def completed_run_dates(
    warehouse: Warehouse, stage: str, start: dt.date, end: dt.date
) -> set[dt.date]:
    """Run dates in [start, end] whose ``stage`` last succeeded (backfill resumes after them)."""
    sql_text = sql.select_completed_run_dates(warehouse.dialect)

    def read(session: Session) -> set[dt.date]:
        return {row[0] for row in session.fetchall(sql_text, (stage, start, end))}

    return warehouse.run(read)
