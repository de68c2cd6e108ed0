"""Corporate actions as data: the splits and dividends users declare, kept beside the raw zone.

The raw zone is immutable, and the free vendor endpoint carries no split or dividend fields,
so a split the vendor did not report is declared here (``fdp actions add AAPL 2020-08-31 split
4:1``) and lives in one small Parquet table of the lake, ``curated/corporate_actions/
actions.parquet``, one row per (symbol, ex_date, kind), written under the lake's lease. The
transform's plan applies it to every bar of that key it computes (``apply``): a declared split
sets the bar's ``split_coefficient``, a declared dividend its ``dividend_amount``, exactly as if
the vendor had sent the field. A declaration wins over the vendor's field: it is the user's
explicit statement about that bar.

A split is written ``NEW:OLD`` shares (4:1 gives four shares for one, coefficient 4.0; a 1:10
reverse split 0.1), the vendor's ``split_coefficient`` convention.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Literal, get_args

import polars as pl

from fdp.config import Settings
from fdp.errors import ConfigError
from fdp.records import TICKER_RE
from fdp.storage import filesystem, parquet_bytes, put_bytes, read_parquet

Kind = Literal["split", "dividend"]
KINDS: tuple[Kind, ...] = get_args(Kind)
TABLE = "corporate_actions"
FILE_NAME = "actions.parquet"
KEY = ("symbol", "ex_date", "kind")
SCHEMA = pl.Schema(
    {
        "symbol": pl.String(),
        "ex_date": pl.Date(),
        "kind": pl.String(),
        "value": pl.Float64(),
        "declared_at": pl.Datetime("us", "UTC"),
    }
)
"""``value``: a split's coefficient (new shares per old share), a dividend's cash per share."""

_RATIO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*[:/]\s*(\d+(?:\.\d+)?)\s*$")
SPLIT_RANGE = (1e-4, 100.0)
"""The split coefficients the quality gate admits (``split_coefficient_in_range``)."""


def table_url(settings: Settings) -> str:
    return settings.path("curated", TABLE, FILE_NAME)


def parse_split(text: str) -> float:
    """The coefficient of a split written ``NEW:OLD`` (``4:1`` -> 4.0, ``1:10`` -> 0.1)."""
    found = _RATIO.match(text)
    if found is None:
        raise ConfigError(
            f"split ratio {text!r} is not NEW:OLD", field="ratio", hint="write it like 4:1 or 1:10"
        )
    new, old = float(found[1]), float(found[2])
    if new <= 0 or old <= 0:
        raise ConfigError(f"split ratio {text!r} has a zero side", field="ratio")
    coefficient = new / old
    low, high = SPLIT_RANGE
    if coefficient == 1.0 or not low <= coefficient <= high:
        raise ConfigError(
            f"split ratio {text!r} gives coefficient {coefficient:g}; expected a value in"
            f" [{low:g}, {high:g}] other than 1",
            field="ratio",
        )
    return coefficient


def parse_dividend(text: str) -> float:
    """A cash dividend per share: a finite positive number."""
    try:
        amount = float(text)
    except ValueError:
        amount = math.nan
    if not math.isfinite(amount) or amount <= 0:
        raise ConfigError(f"dividend {text!r} is not a positive amount", field="amount")
    return amount


def ratio_text(coefficient: float) -> str:
    """A split coefficient written ``NEW:OLD`` with small whole numbers where one fits."""
    for old in range(1, 11):
        new = coefficient * old
        if abs(new - round(new)) < 1e-9 * max(1.0, new):
            return f"{round(new)}:{old}"
    return f"{coefficient:g}:1"


def action(symbol: str, ex_date: dt.date, kind: str, value: str) -> pl.DataFrame:
    """One declared action, checked, as a row of the table (``declared_at`` now)."""
    symbol = symbol.upper()
    if not TICKER_RE.match(symbol):
        raise ConfigError(f"symbol {symbol!r} is not a ticker", field="symbol")
    if kind not in KINDS:
        raise ConfigError(f"action kind {kind!r} is not one of {', '.join(KINDS)}", field="kind")
    amount = parse_split(value) if kind == "split" else parse_dividend(value)
    row = {
        "symbol": symbol,
        "ex_date": ex_date,
        "kind": kind,
        "value": amount,
        "declared_at": dt.datetime.now(dt.UTC),
    }
    return pl.DataFrame([row], schema=SCHEMA)


def read(settings: Settings) -> pl.DataFrame:
    """Every declared action, sorted by key (empty when none was declared)."""
    fs, path = filesystem(table_url(settings), settings)
    if not fs.exists(path):
        return pl.DataFrame(schema=SCHEMA)
    found = pl.DataFrame(pl.from_arrow(read_parquet(fs, path)))
    return found.select(pl.col(n).cast(t) for n, t in SCHEMA.items()).sort(KEY)


def write(settings: Settings, table: pl.DataFrame) -> None:
    """Replace the table with ``table`` (atomically; the caller holds the lake's lease)."""
    fs, path = filesystem(table_url(settings), settings)
    rows = table.select(SCHEMA.names()).sort(KEY)
    put_bytes(fs, path, parquet_bytes(rows.to_arrow()))


def merged(table: pl.DataFrame, declared: pl.DataFrame) -> pl.DataFrame:
    """``table`` with ``declared`` added; a declaration replaces the one of its key."""
    return pl.concat([table.join(declared, on=KEY, how="anti"), declared]).sort(KEY)


def apply(bars: pl.DataFrame, table: pl.DataFrame) -> pl.DataFrame:
    """``bars`` (cleansed: symbol, trade_date, split_coefficient, dividend_amount) with the
    declared actions of their keys applied, rows and order unchanged."""
    if table.is_empty() or bars.is_empty():
        return bars
    wide = (
        table.pivot(on="kind", index=["symbol", "ex_date"], values="value")
        .rename({"ex_date": "trade_date"})
        .with_columns(pl.lit(None, pl.Float64).alias(k) for k in KINDS if k not in table["kind"])
        .select("symbol", "trade_date", pl.col(KINDS).name.prefix("_declared_"))
    )
    return (
        bars.join(wide, on=["symbol", "trade_date"], how="left", maintain_order="left")
        .with_columns(
            pl.coalesce("_declared_split", "split_coefficient").alias("split_coefficient"),
            pl.coalesce("_declared_dividend", "dividend_amount").alias("dividend_amount"),
        )
        .select(bars.columns)
    )


def declare(settings: Settings, declared: pl.DataFrame) -> pl.DataFrame:
    """Add ``declared`` (rows of ``action``) to the table under the lake's lease; the table
    as written."""
    from fdp import lake

    with lake.lease(settings, "actions add"):
        table = merged(read(settings), declared)
        write(settings, table)
    return table


def known(settings: Settings) -> pl.DataFrame:
    """Every action fdp knows: the declared ones, and those the vendor's fields carried into
    the curated lake (a bar's split coefficient other than 1, a dividend above 0) that no
    declaration covers; ``source`` says which (``declared_at`` is null for the vendor's)."""
    from fdp import lake

    declared = read(settings).with_columns(pl.lit("declared").alias("source"))
    if not lake.partitions(settings):
        return declared
    bars = (
        lake.scan(settings)
        .filter((pl.col("split_coefficient") != 1.0) | (pl.col("dividend_amount") > 0))
        .select("symbol", "trade_date", "split_coefficient", "dividend_amount")
        .collect()
    )
    vendor = (
        bars.unpivot(
            index=["symbol", "trade_date"],
            on=["split_coefficient", "dividend_amount"],
            variable_name="kind",
        )
        .filter(
            pl.when(pl.col("kind") == "split_coefficient")
            .then(pl.col("value") != 1.0)
            .otherwise(pl.col("value") > 0)
        )
        .select(
            "symbol",
            pl.col("trade_date").alias("ex_date"),
            pl.col("kind").replace_strict(
                {"split_coefficient": "split", "dividend_amount": "dividend"}
            ),
            "value",
            pl.lit(None, SCHEMA["declared_at"]).alias("declared_at"),
            pl.lit("vendor").alias("source"),
        )
        .join(declared, on=KEY, how="anti")
    )
    return pl.concat([declared, vendor]).sort(KEY)
