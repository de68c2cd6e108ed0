"""The rejected-rows store: one object per (stage, source, date), replaced whole."""

from __future__ import annotations

import datetime as dt

import polars as pl

from fdp.config import Settings
from fdp.records import Frame, StockRecord
from fdp.rejected import accepted_rows, read_rejected, write_rejected

DAY = dt.date(2024, 3, 4)


def _rows(symbol: str, source_file: str, n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "symbol": [symbol] * n,
            "timestamp": [f"2024-03-0{i + 1}" for i in range(n)],
            "open": [1.0] * n,
            "high": [2.0] * n,
            "low": [0.5] * n,
            "close": [-1.0] * n,
            "adjusted_close": [None] * n,
            "volume": [10] * n,
            "dividend_amount": [None] * n,
            "split_coefficient": [None] * n,
            "source_file": [source_file] * n,
            "ingest_date": [DAY] * n,
        },
        schema=StockRecord.polars_schema(),
    )


def _rejected(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.with_columns(rule=pl.lit("close_not_negative"), reason=pl.lit("close < 0"))


def test_one_sources_run_keeps_another_sources_rejections(settings: Settings) -> None:
    av, sim = _rows("AAPL", "av.json", 2), _rows("MSFT", "sim.json", 3)
    write_rejected(settings, "cleanse", DAY, _rejected(av), source="alpha_vantage")
    write_rejected(settings, "cleanse", DAY, _rejected(sim), source="simulator")
    write_rejected(settings, "cleanse", DAY, _rejected(sim), source="simulator")  # a re-run

    both = read_rejected(settings, DAY, "cleanse")
    assert sorted(both["symbol"].to_list()) == ["AAPL", "AAPL", "MSFT", "MSFT", "MSFT"]
    assert set(both["stage"]) == {"cleanse"}
    assert read_rejected(settings, DAY, "cleanse", source="alpha_vantage").height == 2
    assert read_rejected(settings, DAY, "quality").is_empty()


def test_accepted_rows_drop_exactly_the_rejected_ones() -> None:
    batch = pl.concat([_rows("AAPL", "a.json", 3), _rows("AAPL", "b.json", 3)])
    rejected = _rejected(_rows("AAPL", "a.json", 2))
    kept = accepted_rows(Frame(StockRecord, batch), rejected).df
    assert kept.height == 4
    assert kept.filter(pl.col("source_file") == "a.json")["timestamp"].to_list() == ["2024-03-03"]
