"""Hand-made batches: a clean one, and ways to break it one rule at a time."""

from __future__ import annotations

import datetime as dt

import polars as pl

from fdp.calendar import sessions
from fdp.config import Settings
from fdp.records import Frame, StockRecord
from fdp.sources.landing import RawZone

INGEST = dt.date(2024, 5, 1)
"""After every bar of the batches below: no bar is dated after its ingest date."""
SOURCE_FILE = "file:///raw/source=simulator/ingest_date=2024-05-01/part-00000.parquet"


def clean_frame(
    symbols: tuple[str, ...] = ("AAA", "BBB"),
    start: dt.date = dt.date(2024, 1, 2),
    end: dt.date = dt.date(2024, 2, 29),
    source_file: str = SOURCE_FILE,
) -> pl.DataFrame:
    """Valid bars: every session for every symbol, low < open, close < high."""
    days = [d.isoformat() for d in sessions(start, end)]
    rows = []
    for k, symbol in enumerate(symbols):
        for i, day in enumerate(days):
            base = 50.0 + 10 * k + 0.25 * i
            rows.append(
                {
                    "symbol": symbol,
                    "timestamp": day,
                    "open": base,
                    "high": base + 2.0,
                    "low": base - 2.0,
                    "close": base + 1.0,
                    "adjusted_close": base + 1.0,
                    "volume": 1_000 + i,
                    "dividend_amount": 0.0,
                    "split_coefficient": 1.0,
                    "source_file": source_file,
                    "ingest_date": INGEST,
                }
            )
    return pl.DataFrame(rows, schema=StockRecord.polars_schema())


def clean_batch(**kwargs: object) -> Frame[StockRecord]:
    return Frame(StockRecord, clean_frame(**kwargs))  # type: ignore[arg-type]


def set_value(df: pl.DataFrame, rows: list[int], **values: object) -> pl.DataFrame:
    """``df`` with the given columns replaced by ``values`` on row positions ``rows``."""
    index = pl.int_range(pl.len()).is_in(rows)
    return df.with_columns(
        pl.when(index).then(pl.lit(v, dtype=df.schema[c])).otherwise(pl.col(c)).alias(c)
        for c, v in values.items()
    )


def land_batch(settings: Settings, df: pl.DataFrame, source: str = "simulator") -> None:
    """Land ``df`` (StockRecord rows) as the one Parquet part of (source, ``INGEST``)."""
    zone = RawZone(settings)
    part = f"{zone.batch_dir(source, INGEST)}/part-00000.parquet"
    df = df.with_columns(source_file=pl.lit(zone.uri(part)))
    zone.land_parquet(source, INGEST, Frame(StockRecord, df).to_arrow(), 0)
