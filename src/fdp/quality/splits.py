"""The suspected-split rule: a price jump the size of a common split, with volume moving the
other way, that no split field or declared action explains, is held back by the gate.

The free vendor endpoint carries no split field, so a real 2:1 split arrives as a -50% day and
would flow into every indicator after it. A bar is suspected when, against the symbol's
previous bar (in the batch, or the last stored one in the lake when the batch starts the
symbol's new days), both hold:

- the implied coefficient ``c = previous close / close`` is within ``PRICE_TOLERANCE`` (in log
  terms) of a common split coefficient (``COMMON``): 5% covers the day's own return on the
  split day (a 2.5 sigma day at 2% daily volatility) while keeping neighbouring ratios apart
  (3:2 and 2:1 are 29% apart in log terms), and no ordinary day moves a price by a third;
- volume moves inversely (up on a forward split, down on a reverse one): a split changes the
  share count traded by the split's factor. Only the direction is required: one day's volume
  swings about 30% in log terms, as much as a 3:2 split moves it, so demanding the full factor
  would miss most 3:2 splits. The direction is what tells a reverse split (price up, volume
  down) from a rally (price up, volume up); a forward split and a crash both fall on heavier
  volume, and only the price ratio, near a split's and far beyond an ordinary day, tells them
  apart: a crash of exactly a split's size is held back too, for a person to decide;

and the bar's ``split_coefficient`` is 1 (or missing) with no declared split on its key
(``fdp.actions``). The gate then fails, naming each key with the command that declares it,
and the batch is held back whole: no row is put aside, since a bar left out would make the
next day's bar look like the same split against the stale last bar. Declaring the split and
validating again lets the batch through, split-adjusted; if the move was real, overriding the
gate (``--override-gate REASON``) lets it through as traded.
This is fdp's own rule beside the GX suite: it needs the lake's last bar of each symbol, which
a GX batch does not hold.
"""

from __future__ import annotations

import math

import polars as pl

from fdp import actions, lake
from fdp.config import Settings
from fdp.quality.report import KEYS_IN_REPORT, ExpectationResult
from fdp.quality.suite import bar_date

RULE = "suspected_split"
EXPECTATION = "fdp_expect_no_unexplained_split"
PRICE_TOLERANCE = 0.05
"""Largest |ln(implied coefficient) - ln(split coefficient)| of a suspected split."""
_FORWARD = (1.5, 2.0, 3.0, 4.0, 5.0, 8.0, 10.0, 20.0)
COMMON: tuple[float, ...] = (*_FORWARD, *(1.0 / c for c in _FORWARD))
"""Split coefficients (new shares per old): 3:2, 2:1, ... 20:1 and their reverse splits."""
COLUMNS = ("symbol", "timestamp", "close", "volume", "split_coefficient")
FOUND_SCHEMA = pl.Schema({"symbol": pl.String(), "timestamp": pl.String(), "ratio": pl.String()})


def suspected(rows: pl.DataFrame, previous: pl.DataFrame, declared: pl.DataFrame) -> pl.DataFrame:
    """The (symbol, timestamp, ratio) of the batch ``rows`` (``COLUMNS``) that look like an
    unexplained split, against ``previous`` (symbol, trade_date, close, volume: the last
    stored bar of each symbol before its batch rows) and the ``declared`` actions."""
    bars = rows.select(
        "symbol",
        "timestamp",
        bar_date("timestamp").alias("trade_date"),
        pl.col("close").cast(pl.Float64),
        pl.col("volume").cast(pl.Float64),
        pl.col("split_coefficient").cast(pl.Float64).fill_null(1.0).alias("split"),
        pl.lit(True).alias("in_batch"),
    ).filter(pl.col("trade_date").is_not_null())
    before = previous.select(
        "symbol",
        pl.lit(None, pl.String).alias("timestamp"),
        "trade_date",
        pl.col("close").cast(pl.Float64),
        pl.col("volume").cast(pl.Float64),
        pl.lit(1.0).alias("split"),
        pl.lit(False).alias("in_batch"),
    )
    series = (
        pl.concat([before, bars])
        .sort("symbol", "trade_date")
        .with_columns(
            (pl.col("close").shift(1) / pl.col("close")).over("symbol").log().alias("_price"),
            (pl.col("volume") / pl.col("volume").shift(1)).over("symbol").log().alias("_volume"),
        )
    )
    nearest = pl.lit(None, pl.Float64)
    for c in COMMON:
        near = (pl.col("_price") - math.log(c)).abs() <= PRICE_TOLERANCE
        inverse = pl.col("_volume") * math.copysign(1.0, math.log(c)) > 0
        nearest = pl.when(near & inverse).then(pl.lit(c)).otherwise(nearest)
    splits = declared.filter(pl.col("kind") == "split").select(
        "symbol", pl.col("ex_date").alias("trade_date")
    )
    smallest = min(abs(math.log(c)) for c in COMMON) - PRICE_TOLERANCE
    return (
        series.filter(
            pl.col("in_batch")
            & (pl.col("_price").abs() >= smallest)  # most bars are out here, cheaply
            & (pl.col("split") == 1.0)
            & (pl.col("close") > 0)
        )
        .with_columns(nearest.alias("coefficient"))
        .filter(pl.col("coefficient").is_not_null())
        .join(splits, on=["symbol", "trade_date"], how="anti")
        .select(
            "symbol",
            "timestamp",
            pl.col("coefficient")
            .replace_strict({c: actions.ratio_text(c) for c in COMMON}, return_dtype=pl.String)
            .alias("ratio"),
        )
    )


def last_stored(settings: Settings, rows: pl.DataFrame) -> pl.DataFrame:
    """Per symbol of ``rows``: the lake's last bar before its first batch date (none for a
    symbol the lake does not hold), as (symbol, trade_date, close, volume)."""
    wanted = (
        rows.select("symbol", bar_date("timestamp").alias("from_date"))
        .drop_nulls()
        .group_by("symbol")
        .agg(pl.col("from_date").min())
    )
    stored = lake.read_history(settings, wanted, 1) if lake.partitions(settings) else None
    if stored is None or stored.is_empty():
        return pl.DataFrame(
            schema={
                "symbol": pl.String,
                "trade_date": pl.Date,
                "close": pl.Float64,
                "volume": pl.Int64,
            }
        )
    return (
        stored.join(wanted, on="symbol")
        .filter(pl.col("trade_date") < pl.col("from_date"))
        .sort("symbol", "trade_date")
        .group_by("symbol", maintain_order=True)
        .last()
        .select("symbol", "trade_date", "close", "volume")
    )


def command(symbol: str, date: str, ratio: str) -> str:
    """The command that declares a split: the one place its wording lives."""
    return f"fdp actions add {symbol} {date} split {ratio}"


def held_back(settings: Settings, rows: pl.DataFrame) -> pl.DataFrame:
    """The (symbol, timestamp, ratio) of the batch ``rows`` (StockRecord, whole symbols, those
    no suite rule rejected) that look like an unexplained split, sorted by key."""
    found = suspected(rows.select(COLUMNS), last_stored(settings, rows), actions.read(settings))
    return found.sort("symbol", "timestamp")


def result(found: pl.DataFrame, row_count: int) -> ExpectationResult:
    """The rule's outcome on a batch of ``row_count`` rows in which ``held_back`` found
    ``found``: failed when it found any, its description carrying the commands that declare
    the first ten."""
    commands = [f"`{command(*row)}`" for row in found.head(10).rows()]
    description = (
        "no price jump the size of a common split with volume moving inversely, unless a split"
        " field or a declared action explains it"
        + ("; if real, declare each split: " + "; ".join(commands) if commands else "")
    )
    return ExpectationResult(
        rule=RULE,
        expectation_type=EXPECTATION,
        columns=COLUMNS,
        success=found.is_empty(),
        unexpected_count=found.height,
        unexpected_percent=100.0 * found.height / row_count if row_count else None,
        mostly=None,
        description=description,
        failing_keys=tuple(found.select("symbol", "timestamp").head(KEYS_IN_REPORT).rows()),
    )
