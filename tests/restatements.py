"""Raw batches with restatements, a late bar, a late split and a re-delivery, for the tests
of point-in-time reads (``fdp.read(as_of=...)``) on the lake and the warehouse."""

from __future__ import annotations

import datetime as dt

import polars as pl

from bars import land, random_bars, unvalidated
from fdp import lake
from fdp.calendar import sessions
from fdp.config import Settings
from fdp.transform import transform

DAYS = sessions(dt.date(2024, 1, 2), dt.date(2024, 5, 31))
SYMBOLS = ["AAA", "BBB", "CCC"]
FIRST = 70
"""The first batch delivers DAYS[:FIRST]; each later batch one new session (and corrections)."""


def _bars() -> pl.DataFrame:
    bars = random_bars(SYMBOLS, DAYS, seed=7)
    return bars.with_columns(pl.lit(1.0).alias("split_coefficient"))


def _restated(bars: pl.DataFrame, symbol: str, day: dt.date, factor: float) -> pl.DataFrame:
    """The bar of ``symbol`` on ``day`` with its prices scaled by ``factor``."""
    row = bars.filter((pl.col("symbol") == symbol) & (pl.col("trade_date") == day))
    prices = ["open", "high", "low", "close", "adjusted_close"]
    return row.with_columns(pl.col(p) * factor for p in prices)


def batches() -> dict[dt.date, pl.DataFrame]:
    """The raw batches by ingest date: a history, then daily bars with corrections in them."""
    bars = _bars()
    on = lambda day: bars.filter(pl.col("trade_date") == day)  # noqa: E731
    first = DAYS[FIRST - 1]
    batches = {first: bars.filter(pl.col("trade_date") <= first)}
    late_day = DAYS[FIRST + 1]
    for i in range(FIRST, FIRST + 8):
        day = DAYS[i]
        batches[day] = on(day)
    # A restatement two sessions back: AAA's rows from it on change, indicators included.
    batches[DAYS[FIRST + 1]] = pl.concat(
        [on(DAYS[FIRST + 1]), _restated(bars, "AAA", DAYS[FIRST - 1], 1.03)]
    ).filter(~((pl.col("symbol") == "BBB") & (pl.col("trade_date") == late_day)))
    # BBB's bar of late_day arrives a session late; CCC's bar of long ago is corrected.
    batches[DAYS[FIRST + 2]] = pl.concat(
        [
            on(DAYS[FIRST + 2]),
            on(late_day).filter(pl.col("symbol") == "BBB"),
            _restated(bars, "CCC", DAYS[3], 0.9),
        ]
    )
    # AAA's bar restated again (a second version of the same key), and a split learnt late.
    split = _restated(bars, "BBB", DAYS[40], 0.5).with_columns(
        pl.lit(2.0).alias("split_coefficient"), pl.col("volume") * 2
    )
    batches[DAYS[FIRST + 4]] = pl.concat(
        [on(DAYS[FIRST + 4]), _restated(bars, "AAA", DAYS[FIRST - 1], 0.97), split]
    )
    # The same bar delivered again unchanged: only its ingest date moves.
    batches[DAYS[FIRST + 6]] = pl.concat(
        [on(DAYS[FIRST + 6]), on(DAYS[FIRST + 5]).filter(pl.col("symbol") == "CCC")]
    )
    return batches


def run(settings: Settings, batches: dict[dt.date, pl.DataFrame]) -> None:
    for day, rows in sorted(batches.items()):
        land(settings, day, rows.sort("symbol", "trade_date"))
        transform(settings, day, gate=unvalidated(settings, day))


VALUES = [c for c in lake.file_columns() if c != "processing_timestamp"]
