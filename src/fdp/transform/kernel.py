"""The one kernel of the transform: cleansing and indicators on Polars frames, vectorised over
all symbols at once. Every engine runs it (the embedded one in process, Spark in its Python
workers over groups of whole symbols), so a formula or a cleansing rule exists once.

Rows are kept sorted by (symbol, trade_date) and windows are computed on whole columns; rows
whose window would reach into the previous symbol are masked by their position in the symbol,
which is much faster than a per-symbol ``over`` (used only where a recursion must restart).
"""

from __future__ import annotations

import datetime as dt
import operator
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import polars as pl

from fdp import indicators
from fdp.indicators import Abs, Binary, Col, Const, Expr, Indicator, Lag, P, Rolling, Smooth
from fdp.records import (
    ROW_KEY,
    TICKER_PATTERN,
    CleansedRecord,
    EnrichedStockRecord,
    Frame,
    StockRecord,
    in_key_order,
)
from fdp.transform.rules import PRICES, RULES, CleanseRule

KEY = ROW_KEY
_STATE = "_state"
_POS = "_pos"
_GROUP = "_group"
"""A symbol's run id in the sorted rows: an integer ``over`` key, much cheaper than the string."""
_FACTOR = "_factor"
"""The product of a row's later split coefficients (P = close / factor)."""


@dataclass(frozen=True, slots=True)
class Cleansed:
    """The result of cleansing: the kept rows and the rejected ones (StockRecord + rule, reason)."""

    rows: Frame[CleansedRecord]
    rejected: pl.DataFrame


def cleanse(raw: Frame[StockRecord]) -> Cleansed:
    """Apply the CleansedRecord contract; every dropped row comes back with a rule and reason."""
    df = raw.df.with_row_index("_row")
    symbols = df["symbol"].unique()
    upper = symbols.str.to_uppercase()
    bad_symbols = upper.filter(~upper.str.contains(TICKER_PATTERN))
    df = df.with_columns(
        # Few distinct tickers: each is upper-cased once, and rarely needs it.
        (df["symbol"] if upper.equals(symbols) else df["symbol"].replace(symbols, upper)).alias(
            "_symbol"
        ),
        _parse_dates(df["timestamp"]).alias("trade_date"),
    )
    rules = [(r.name, _failed(r, bad_symbols), _reason(r)) for r in RULES]
    rule = pl.lit(None, pl.String)
    reason = pl.lit(None, pl.String)
    for name, failed, why in reversed(rules):
        rule = pl.when(failed.fill_null(False)).then(pl.lit(name)).otherwise(rule)
        reason = pl.when(failed.fill_null(False)).then(why).otherwise(reason)
    # Rules and reasons are named for the few failed rows only, not for every row.
    failed_rows, kept = _split(df, pl.any_horizontal(f for _, f, _ in rules).fill_null(False))
    failed_rows = failed_rows.with_columns(rule.alias("rule"), reason.alias("reason"))
    kept = _sorted(kept, ["_symbol", "trade_date", "ingest_date", "source_file", "_row"])
    superseded = (pl.col("_symbol") == pl.col("_symbol").shift(-1)) & (
        pl.col("trade_date") == pl.col("trade_date").shift(-1)
    )
    duplicates, kept = _split(kept, superseded.fill_null(False))
    duplicates = duplicates.with_columns(
        pl.lit("duplicate_key").alias("rule"),
        pl.format("superseded by a later ingest of {} {}", "_symbol", pl.col("trade_date")).alias(
            "reason"
        ),
    )
    rows = kept.with_columns(
        pl.col("_symbol").alias("symbol"),
        pl.col("volume").fill_null(0),
        pl.col("dividend_amount").fill_null(0.0),
        pl.col("split_coefficient").fill_null(1.0),
    )
    rejected = pl.concat([failed_rows, duplicates.select(failed_rows.columns)]).sort("_row")
    return Cleansed(
        Frame(CleansedRecord, rows, origin="cleansed rows"),
        rejected.select(*StockRecord.names(), "rule", "reason"),
    )


def _failed(rule: CleanseRule, bad_symbols: pl.Series) -> pl.Expr:
    """Where ``rule`` fails (null where its column is null, so a null passes). Symbols and
    dates come checked per distinct value (``cleanse``): few of them, many rows."""
    value = pl.col(rule.column)
    match rule.check:
        case "ticker":
            return pl.col("_symbol").is_in(bad_symbols.implode())
        case "date":
            return value.is_null()
        case "not_after":
            return value > pl.col(rule.other or "")
        case "finite":
            return ~value.is_finite()
        case "non_negative":
            return value < 0
        case "positive":
            return value <= 0


def _reason(rule: CleanseRule) -> pl.Expr:
    """``rule``'s reason with the row's values in it (the template's other text is literal)."""
    values = {"{value}": rule.shown_column, "{other}": rule.other}
    parts = re.split(r"(\{value\}|\{other\})", rule.reason)
    return pl.concat_str(
        [pl.col(values[p] or "").cast(pl.String) if p in values else pl.lit(p) for p in parts if p]
    )


def enrich(
    bars: Frame[CleansedRecord],
    state: Frame[EnrichedStockRecord],
    *,
    processed_at: dt.datetime,
    compute: Collection[str] | None = None,
) -> Frame[EnrichedStockRecord]:
    """Enriched rows for every row of ``bars``, sorted by (symbol, trade_date).

    ``bars`` holds, per symbol, every row from the first one to (re)compute to the newest.
    ``state`` holds, per symbol, the curated rows just before that first row (at most
    ``fdp.indicators.state_rows()``, or none for a symbol computed from its first row); their
    P and indicators are taken as stored, so a split there must not be pending. ``compute``
    names the indicators to compute (all by default); the others are null.
    """
    bar_cols = ["symbol", "trade_date", *PRICES, "volume", "dividend_amount", "ingest_date"]
    new = bars.df.select(*bar_cols, "split_coefficient")
    new = in_key_order(new).with_columns(
        (pl.col("close") / later_splits()).alias(P),
        *(pl.lit(None, pl.Float64).alias(name) for name in indicators.columns()),
        pl.lit(False).alias(_STATE),
    )
    old = state.df.select(new.columns[:-1]).with_columns(pl.lit(True).alias(_STATE))
    both = new if old.is_empty() else pl.concat([old, new]).sort(KEY)
    return Frame(EnrichedStockRecord, enrich_sorted(both, processed_at, compute), origin="enriched")


def enrich_sorted(
    df: pl.DataFrame, processed_at: dt.datetime, compute: Collection[str] | None = None
) -> pl.DataFrame:
    """The indicators of ``df``: bars and state rows of whole symbols, sorted by key.

    Indicators are computed level by level (an indicator after those it reads), each into its
    own column; state rows keep their stored values. Each value is masked in a later step:
    masking an expression instead would compute it twice."""
    chosen = indicators.with_dependencies(indicators.columns() if compute is None else compute)
    split = (df["split_coefficient"] != 1.0).any()
    df = df.with_columns(
        position().alias(_POS),
        pl.col("symbol").rle_id().alias(_GROUP),
        (later_splits() if split else pl.lit(1.0)).alias(_FACTOR),
    )
    df = df.with_columns(
        (pl.col(c) / pl.col(_FACTOR)).alias(f"split_adjusted_{c}") for c in ("open", "high", "low")
    )
    for level in _levels(chosen):
        plain = [i for i in level if not isinstance(i.expr, Smooth)]
        smooth = [(i.name, i.expr) for i in level if isinstance(i.expr, Smooth)]
        df = df.with_columns(_render(i.expr).alias(f"_v_{i.name}") for i in plain)
        df = df.with_columns(_stored_or(i.name, pl.lit(True)) for i in plain)
        if smooth:
            df = _smooth(df, smooth)
    df = df.filter(~pl.col(_STATE))
    return _with_calendar(df, processed_at).select(EnrichedStockRecord.names())


def _levels(names: Sequence[str]) -> list[list[Indicator]]:
    """``names``' indicators grouped so that each group reads only earlier groups' columns."""
    level: dict[str, int] = {}
    for name in names:  # registration order: inputs come first
        inputs = [level[i] for i in indicators.get(name).inputs if i in level]
        level[name] = 1 + max(inputs, default=-1)
    groups: list[list[Indicator]] = [[] for _ in range(1 + max(level.values(), default=-1))]
    for name, at in level.items():
        groups[at].append(indicators.get(name))
    return groups


def _render(node: Expr) -> pl.Expr:
    """``node`` as a Polars expression over sorted symbols: null wherever its window would reach
    before the symbol's first row or hold a missing value."""
    match node:
        case Col(name):
            return pl.col(name)
        case Const(value):
            return pl.lit(value, pl.Float64)
        case Lag(x, periods):
            return pl.when(_from_row(periods + 1)).then(_render(x).shift(periods))
        case Rolling(x, window, stat, ddof):
            values = _render(x)
            rolled = (
                values.rolling_std(window, ddof=ddof)
                if stat == "std"
                else getattr(values, f"rolling_{stat}")(window)
            )
            return pl.when(_from_row(window)).then(rolled)
        case Binary(op, left, right):
            a, b = _render(left), _render(right)
            if op in ("max", "min"):
                pick = pl.max_horizontal(a, b) if op == "max" else pl.min_horizontal(a, b)
                return pl.when(a.is_not_null() & b.is_not_null()).then(pick)
            return _ARITHMETIC[op](a, b)
        case Abs(x):
            return _render(x).abs()
    raise TypeError(f"cannot render {node!r}")  # pragma: no cover - a new node type


_ARITHMETIC: dict[str, Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
}


def _stored_or(name: str, where: pl.Expr) -> pl.Expr:
    """Column ``name``: the stored value on state rows, else the computed ``_v_`` value where
    ``where`` holds and it is finite."""
    value = pl.col(f"_v_{name}")
    computed = pl.when(where & value.is_finite()).then(value)
    return pl.when(pl.col(_STATE)).then(pl.col(name)).otherwise(computed).alias(name)


def _smooth(df: pl.DataFrame, smooth: list[tuple[str, Smooth]]) -> pl.DataFrame:
    """The recursive indicators of one level (``Smooth``: EMAs, Wilder), in steps of
    materialised columns rather than repeated subexpressions."""
    df = df.with_columns(_input(name, node) for name, node in smooth)
    df = df.with_columns(_seed(name, node) for name, node in smooth)
    df = df.with_columns(_seed_count(name) for name, _ in smooth)
    df = df.with_columns(_recursion(name, node) for name, node in smooth)
    return df.with_columns(_stored_or(name, pl.col(f"_seeds_{name}") > 0) for name, _ in smooth)


def _input(name: str, node: Smooth) -> pl.Expr:
    """The recursion's input x, null where missing or not finite (x leaves it unchanged)."""
    x = _render(node.x)
    return pl.when(x.is_finite()).then(x).alias(f"_x_{name}")


def _seed(name: str, node: Smooth) -> pl.Expr:
    """The seed candidates: the last stored value of the state rows, else the full-window
    means of x on the computed rows (the first candidate of a symbol is its seed)."""
    state = pl.col(_STATE)
    next_differs = (pl.col(_GROUP) != pl.col(_GROUP).shift(-1)).fill_null(True)
    last_state = state & (next_differs | ~state.shift(-1).fill_null(False))
    mean = pl.when(_from_row(node.seed)).then(pl.col(f"_x_{name}").rolling_mean(node.seed))
    seed = pl.when(state).then(pl.when(last_state).then(pl.col(name))).otherwise(mean)
    return seed.alias(f"_seed_{name}")


def _seed_count(name: str) -> pl.Expr:
    """Seed candidates so far within the symbol (0 before the seed, 1 at it)."""
    flag = pl.col(f"_seed_{name}").is_not_null().cast(pl.Int64)
    total = flag.cum_sum()
    offset = pl.when(pl.col(_POS) == 0).then(total - flag).forward_fill()
    return (total - offset).alias(f"_seeds_{name}")


def _recursion(name: str, node: Smooth) -> pl.Expr:
    """The recursion's input is the seed at its row, then x (null before the seed and on state
    rows); it is carried over missing x. Valid where a seed was met (``_stored_or``)."""
    seed, seeds = pl.col(f"_seed_{name}"), pl.col(f"_seeds_{name}")
    x = (
        pl.when(seed.is_not_null() & (seeds == 1))
        .then(seed)
        .when(~pl.col(_STATE))
        .then(pl.col(f"_x_{name}"))
    )
    values = (
        pl.when(seeds > 0)
        .then(x)
        .ewm_mean(alpha=node.alpha, adjust=False, ignore_nulls=True, min_samples=1)
    )
    return values.over(_GROUP).forward_fill().alias(f"_v_{name}")


def _split(df: pl.DataFrame, flag: pl.Expr) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(the rows where ``flag`` holds, the others); the others are ``df`` itself, uncopied,
    when it holds nowhere (the usual case for a rejection rule)."""
    mask = df.select(flag).to_series()
    if not mask.any():
        return df.clear(), df
    return df.filter(mask), df.filter(~mask)


def _parse_dates(timestamps: pl.Series) -> pl.Series:
    """Vendor date strings to dates; few distinct values, so each is parsed once."""
    distinct = timestamps.unique().drop_nulls()
    parsed = distinct.str.strptime(pl.Date, "%Y-%m-%d", strict=False)
    return timestamps.replace_strict(distinct, parsed, default=None, return_dtype=pl.Date)


def _sorted(df: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    """``df`` sorted by ``by``; skipped when rows already come strictly ordered by
    (``_symbol``, trade_date), which the later columns of ``by`` then cannot reorder."""
    if df.height < 2:
        return df
    sym, day = pl.col("_symbol"), pl.col("trade_date")
    ordered = (sym > sym.shift(1)) | ((sym == sym.shift(1)) & (day > day.shift(1)))
    if df.select(ordered.slice(1).all()).item():
        return df
    return df.sort(by)


def _first_in_symbol() -> pl.Expr:
    return (pl.col("symbol") != pl.col("symbol").shift(1)).fill_null(True)


def position() -> pl.Expr:
    """0-based row number within the symbol (rows sorted by symbol)."""
    index = pl.int_range(pl.len(), dtype=pl.Int64)
    return index - pl.when(_first_in_symbol()).then(index).forward_fill()


def later_splits() -> pl.Expr:
    """Product of the split coefficients of the later rows of the same symbol."""
    same = pl.col("symbol") == pl.col("symbol").shift(-1)
    nxt = pl.when(same).then(pl.col("split_coefficient").shift(-1)).otherwise(1.0)
    return nxt.cum_prod(reverse=True).over(pl.col("symbol").rle_id())


def _from_row(first_row: int) -> pl.Expr:
    """Whether the row is the symbol's ``first_row``-th (1-based) or later: a window of that
    many rows ending here lies within the symbol."""
    return pl.col(_POS) >= first_row - 1


def _with_calendar(df: pl.DataFrame, processed_at: dt.datetime) -> pl.DataFrame:
    day = pl.col("trade_date")
    # Few distinct dates: each is formatted once, then looked up per row.
    days = df["trade_date"].unique()
    stamp = day.replace_strict(days, days.dt.strftime("%Y%m%d"), return_dtype=pl.String)
    return df.with_columns(
        (pl.col("symbol") + "_" + stamp).alias("price_id"),
        day.cast(pl.Datetime("us")).dt.replace_time_zone("UTC").alias("trade_timestamp"),
        day.dt.year().cast(pl.Int32).alias("year"),
        day.dt.quarter().cast(pl.Int32).alias("quarter"),
        day.dt.month().cast(pl.Int32).alias("month"),
        day.dt.day().cast(pl.Int32).alias("day"),
        day.dt.weekday().cast(pl.Int32).alias("day_of_week"),
        pl.lit(processed_at).cast(pl.Datetime("us", "UTC")).alias("processing_timestamp"),
    )
