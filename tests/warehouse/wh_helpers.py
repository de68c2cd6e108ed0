"""Rows, a lake writer and a fact-table reader shared by the warehouse tests."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from fdp import indicators, lake
from fdp.config import Settings
from fdp.records import EnrichedStockRecord, Frame

UTC = dt.UTC


def make_rows(
    symbols: list[str], days: list[dt.date], seed: int = 0, processed: int = 0
) -> pl.DataFrame:
    """EnrichedStockRecord rows with random prices, some nulls and extreme values."""
    rng = np.random.default_rng(seed)
    keys = [(s, d) for s in symbols for d in days]
    n = len(keys)

    def prices(null_share: float = 0.1) -> list[float | None]:
        values = rng.lognormal(4, 1, n)
        return [None if rng.random() < null_share else float(v) for v in values]

    return pl.DataFrame(
        {
            "price_id": [f"{s}_{d:%Y%m%d}" for s, d in keys],
            "symbol": [s for s, _ in keys],
            "trade_date": [d for _, d in keys],
            "trade_timestamp": [
                dt.datetime(d.year, d.month, d.day, 21, tzinfo=UTC) for _, d in keys
            ],
            "open": prices(),
            "high": prices(),
            "low": prices(),
            "close": [1e300, 5e-324, *prices()[2:]] if n > 2 else prices(),
            "adjusted_close": prices(),
            "volume": [2**62, *rng.integers(0, 10**9, n - 1).tolist()],
            "dividend_amount": [0.0] * n,
            "split_coefficient": [1.0] * n,
            "split_adjusted_close": prices(),
            **{name: prices(0.5) for name in indicators.columns()},
            "year": [d.year for _, d in keys],
            "quarter": [(d.month - 1) // 3 + 1 for _, d in keys],
            "month": [d.month for _, d in keys],
            "day": [d.day for _, d in keys],
            "day_of_week": [d.isoweekday() for _, d in keys],
            "processing_timestamp": [dt.datetime(2024, 6, 1, 12, processed, tzinfo=UTC)] * n,
            "ingest_date": [d for _, d in keys],
        },
        schema=EnrichedStockRecord.polars_schema(),
    )


def write_run(settings: Settings, run_date: dt.date, rows: pl.DataFrame) -> None:
    """Publish ``rows`` to the lake and a manifest naming their keys, as the transform does."""
    lake.upsert(settings, [Frame(EnrichedStockRecord, rows)])
    lake.write_changes(settings, run_date, rows)


def fact_rows(url: str, settings: Settings) -> pl.DataFrame:
    """The whole fact table, in key order, typed as the record."""
    from fdp.warehouse import connect

    table = connect(url, settings).query(
        "SELECT * FROM fact_stock_prices ORDER BY symbol, trade_date"
    )
    df = pl.DataFrame(table)
    schema = EnrichedStockRecord.polars_schema()
    if df.is_empty():
        return pl.DataFrame(schema=schema)
    return Frame(
        EnrichedStockRecord, df.with_columns([pl.col(n).cast(t) for n, t in schema.items()])
    ).df


def expected(*batches: pl.DataFrame) -> pl.DataFrame:
    """The rows a warehouse must hold after loading ``batches`` in order: last one wins."""
    key = list(EnrichedStockRecord.KEY)
    return pl.concat(batches).unique(key, keep="last", maintain_order=True).sort(key)
