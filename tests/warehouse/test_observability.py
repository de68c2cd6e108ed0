"""pipeline_runs, dq_results and dim_symbol: idempotent writes, text stored verbatim."""

from __future__ import annotations

import datetime as dt

from fdp.config import Settings
from fdp.warehouse import (
    DqResult,
    PipelineRun,
    SymbolInfo,
    connect,
    migrate,
    record_dq_results,
    record_pipeline_run,
    upsert_symbols,
)
from fdp.warehouse.observability import symbol_info

DAY = dt.date(2024, 3, 1)
T0 = dt.datetime(2024, 3, 1, 22, 0, tzinfo=dt.UTC)


def test_company_name_that_breaks_hand_built_sql_is_stored_verbatim(
    wh_settings: Settings,
) -> None:
    warehouse = connect(wh_settings.warehouse_url, wh_settings)
    migrate(warehouse)
    nasty = 'O\'Brien "Holdings"; DROP TABLE fact_stock_prices; -- \\ %s ? $1 ü'
    upsert_symbols(warehouse, [SymbolInfo("OBR", name=nasty, sector="", exchange=None)])
    upsert_symbols(warehouse, [SymbolInfo("OBR", name=nasty, sector="", exchange=None)])
    rows = warehouse.query("SELECT symbol, name, sector, exchange FROM dim_symbol").to_pylist()
    assert rows == [{"symbol": "OBR", "name": nasty, "sector": "", "exchange": None}]
    assert warehouse.query("SELECT COUNT(*) AS n FROM fact_stock_prices").to_pylist() == [{"n": 0}]


def test_pipeline_run_is_one_row_per_stage_and_date(wh_settings: Settings) -> None:
    warehouse = connect(wh_settings.warehouse_url, wh_settings)
    migrate(warehouse)
    failed = PipelineRun("load", DAY, "r1", "failed", T0, error="boom: 'x'")
    done = PipelineRun(
        "load", DAY, "r2", "success", T0, T0 + dt.timedelta(seconds=3), 10, 9, 1, 3.0
    )
    record_pipeline_run(warehouse, failed)
    record_pipeline_run(warehouse, done)
    record_pipeline_run(warehouse, done)
    rows = warehouse.query(
        "SELECT run_id, status, rows_in, rows_out, rows_rejected, duration_s, error, started_at"
        " FROM pipeline_runs"
    ).to_pylist()
    assert rows == [
        {
            "run_id": "r2",
            "status": "success",
            "rows_in": 10,
            "rows_out": 9,
            "rows_rejected": 1,
            "duration_s": 3.0,
            "error": None,
            "started_at": T0,
        }
    ]


def test_dq_results_replace_their_batch_only(wh_settings: Settings) -> None:
    warehouse = connect(wh_settings.warehouse_url, wh_settings)
    migrate(warehouse)
    first = [
        DqResult("expect_column_values_to_not_be_null", "close", True, 100, 0, 0.0),
        DqResult("expect_table_row_count_to_be_between", None, False, 100, None, None, "100"),
    ]
    record_dq_results(warehouse, DAY, "simulator", first)
    record_dq_results(warehouse, DAY, "alpha_vantage", first[:1])
    record_dq_results(warehouse, DAY, "simulator", first[:1])
    rows = warehouse.query(
        "SELECT source, expectation, column_name, success, unexpected_count FROM dq_results"
        " ORDER BY source"
    ).to_pylist()
    assert rows == [
        {
            "source": source,
            "expectation": "expect_column_values_to_not_be_null",
            "column_name": "close",
            "success": True,
            "unexpected_count": 0,
        }
        for source in ("alpha_vantage", "simulator")
    ]


def test_symbol_info_comes_from_the_simulator_parameters() -> None:
    from fdp.sources.symbols import symbol_parameters

    info = symbol_info("ZZTOP")
    params = symbol_parameters("ZZTOP")
    assert (info.name, info.sector, info.exchange) == (params.name, params.sector, params.exchange)


def test_many_symbols_are_replaced_at_once_nulls_included(wh_settings: Settings) -> None:
    """Dialects taking array parameters write all symbols in two statements: the values must
    still line up per symbol, NULL columns included, and a second write replaces the first."""
    warehouse = connect(wh_settings.warehouse_url, wh_settings)
    migrate(warehouse)
    first = [
        SymbolInfo(f"S{i:03d}", name=f"n{i}", sector=None if i % 2 else "Tech") for i in range(50)
    ]
    second = [SymbolInfo(s.symbol, name=f"{s.name}'", exchange="NYSE") for s in first[10:20]]
    upsert_symbols(warehouse, first)
    upsert_symbols(warehouse, second)
    got = warehouse.query(
        "SELECT symbol, name, sector, industry, exchange FROM dim_symbol ORDER BY symbol"
    ).to_pylist()
    latest = {s.symbol: s for s in first} | {s.symbol: s for s in second}
    assert got == [
        {
            "symbol": s.symbol,
            "name": s.name,
            "sector": s.sector,
            "industry": None,
            "exchange": s.exchange,
        }
        for s in sorted(latest.values(), key=lambda s: s.symbol)
    ]
