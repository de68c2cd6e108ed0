"""Synthetic bars for transform tests, landed in the raw zone like the simulator does."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from fdp.config import Settings
from fdp.quality.gate import Gate
from fdp.records import CleansedRecord, StockRecord
from fdp.sources.landing import RawZone
from fdp.sources.vendor_json import encode_daily_adjusted
from indicator_oracle import Bar


def random_bars(symbols: list[str], days: list[dt.date], seed: int = 0) -> pl.DataFrame:
    """A random walk per symbol (date, prices, volume, dividend, split), rare splits."""
    rng = np.random.default_rng(seed)
    frames = []
    for symbol in symbols:
        n = len(days)
        close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
        split = np.where(rng.random(n) < 0.01, 2.0, 1.0)
        frames.append(
            pl.DataFrame(
                {
                    "symbol": symbol,
                    "trade_date": days,
                    "open": close * (1 + rng.normal(0, 0.005, n)),
                    "high": close * 1.01,
                    "low": close * 0.99,
                    "close": close,
                    "adjusted_close": close,
                    "volume": rng.integers(0, 10_000, n),
                    "dividend_amount": np.where(rng.random(n) < 0.02, 0.25, 0.0),
                    "split_coefficient": split,
                }
            )
        )
    return pl.concat(frames)


def land(
    settings: Settings, ingest_date: dt.date, bars: pl.DataFrame, *, fmt: str = "parquet"
) -> None:
    """Land ``bars`` as the raw batch of ``ingest_date`` (bulk Parquet or vendor JSON)."""
    zone = RawZone(settings)
    if fmt == "json":
        for (symbol,), rows in bars.group_by("symbol"):
            payload = encode_daily_adjusted(str(symbol), rows, last_refreshed=ingest_date)
            zone.land("simulator", ingest_date, str(symbol), payload, rows=rows.height)
        return
    records = bars.select(
        "symbol",
        pl.col("trade_date").dt.strftime("%Y-%m-%d").alias("timestamp"),
        "open",
        "high",
        "low",
        "close",
        "adjusted_close",
        "volume",
        "dividend_amount",
        "split_coefficient",
        pl.lit(f"bulk-{ingest_date}").alias("source_file"),
        pl.lit(ingest_date).alias("ingest_date"),
    ).cast(StockRecord.polars_schema())
    zone.land_parquet("simulator", ingest_date, records.to_arrow(), part=0)


def cleansed_frame(symbols: dict[str, list[Bar]], start: dt.date) -> pl.DataFrame:
    """Oracle bars as CleansedRecord rows, one calendar day apart from ``start``."""
    rows = [
        {
            "symbol": symbol,
            "trade_date": start + dt.timedelta(days=i),
            "open": b.close,
            "high": b.high,
            "low": b.low,
            "close": b.close,
            "adjusted_close": b.close,
            "volume": b.volume,
            "dividend_amount": 0.0,
            "split_coefficient": b.split,
            "source_file": "test",
            "ingest_date": start + dt.timedelta(days=i),
        }
        for symbol, series in symbols.items()
        for i, b in enumerate(series)
    ]
    return pl.DataFrame(rows, schema=CleansedRecord.polars_schema())


def unvalidated(settings: Settings, day: dt.date, source: str = "simulator") -> Gate:
    """The gate of a test about transform mechanics, not about the gate: it admits the batch
    without a validation, as an explicit override would."""
    return Gate(settings, source, day, override="test of transform mechanics")
