"""``fdp.read``: curated prices and indicators as a data frame, for notebooks and scripts.

Reads go straight to the lake's Parquet files (no engine, no server): only the month
partitions that overlap the date range are opened, and inside them only the row groups whose
symbol and date statistics can match (files are sorted by symbol, then date). The warehouse
(its fact and history tables, loaded from the lake) is the other source.

Point in time (``as_of``): the lake as it stood once every raw batch with ``ingest_date`` <= D
had been transformed, and none after. The current rows and the version history
(``fdp.history``) hold every version a key has had; the one valid as of D is the one with the
smallest ``valid_to`` > D among those with ``ingest_date`` <= D (the current row counting as
``valid_to`` = infinity). So a bar restated on day R shows its old value, and the old
indicators computed from it, for D < R, and the new ones from R on; a bar first delivered
on R is absent before R.

Adjustment (``adjust``): ``raw`` is as traded. ``split`` divides open, high, low, close and
the dividend by the split factor ``F_t = close_t / split_adjusted_close_t`` (the product of
the split coefficients of the symbol's later bars, as the curated rows hold it) and multiplies
volume by it, so the close is ``split_adjusted_close``. ``total`` is the standard backward
total-return adjustment (Yahoo's, CRSP's factor form) on top of the split adjustment: with
``P`` the split-adjusted close and ``d_u = dividend_u / F_u`` the dividend in today's share
basis, every price of bar t is multiplied by ``T_t = prod_{u > t, d_u > 0} (1 - d_u /
P_{u-1})``, so that ``adj_t / adj_{t-1} = P_t / (P_{t-1} - d_t)``: a dividend's ex-date drop
is no loss. Both factors depend on the symbol's later bars (up to ``as_of`` when given), which
the read takes whatever ``end`` is. Indicators are computed on ``P`` and not adjusted further.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal, get_args, overload

import polars as pl

from fdp import history, lake
from fdp.config import Settings
from fdp.errors import ConfigError
from fdp.records import TICKER_RE, EnrichedStockRecord

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

Source = Literal["lake", "warehouse"]
Output = Literal["polars", "pandas", "arrow"]
Adjust = Literal["raw", "split", "total"]
SOURCES: tuple[str, ...] = get_args(Source)
OUTPUTS: tuple[str, ...] = get_args(Output)
ADJUSTS: tuple[str, ...] = get_args(Adjust)
PRICES = ("open", "high", "low", "close")
"""The as-traded prices an adjustment rescales (``adjusted_close`` is the vendor's own)."""
_FACTOR_INPUTS = ("close", "split_adjusted_close", "dividend_amount")


class ReadError(ConfigError):
    """A read asked for something the data does not hold (a symbol, a column, a range)."""


@overload
def read(
    symbols: str | Sequence[str] | None = ...,
    start: dt.date | str | None = ...,
    end: dt.date | str | None = ...,
    columns: Sequence[str] | None = ...,
    *,
    as_of: dt.date | str | None = ...,
    adjust: Adjust = ...,
    source: Source = ...,
    output: Literal["polars"] = ...,
    settings: Settings | None = ...,
) -> pl.DataFrame: ...


@overload
def read(
    symbols: str | Sequence[str] | None = ...,
    start: dt.date | str | None = ...,
    end: dt.date | str | None = ...,
    columns: Sequence[str] | None = ...,
    *,
    as_of: dt.date | str | None = ...,
    adjust: Adjust = ...,
    source: Source = ...,
    output: Literal["pandas"],
    settings: Settings | None = ...,
) -> pd.DataFrame: ...


@overload
def read(
    symbols: str | Sequence[str] | None = ...,
    start: dt.date | str | None = ...,
    end: dt.date | str | None = ...,
    columns: Sequence[str] | None = ...,
    *,
    as_of: dt.date | str | None = ...,
    adjust: Adjust = ...,
    source: Source = ...,
    output: Literal["arrow"],
    settings: Settings | None = ...,
) -> pa.Table: ...


def read(
    symbols: str | Sequence[str] | None = None,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
    columns: Sequence[str] | None = None,
    *,
    as_of: dt.date | str | None = None,
    adjust: Adjust = "raw",
    source: Source = "lake",
    output: Output = "polars",
    settings: Settings | None = None,
) -> pl.DataFrame | pd.DataFrame | pa.Table:
    """Curated rows (``EnrichedStockRecord``: the bar, its indicators, lineage) of ``symbols``
    (all when None) with ``start`` <= trade_date <= ``end`` (either open when None), sorted by
    symbol and date.

    ``columns`` picks columns or indicator names (``symbol`` and ``trade_date`` always come
    first); ``as_of`` = D returns what fdp had published after processing every raw batch with
    ingest_date <= D and none later: restated bars and every indicator computed from them as
    they were then, bars delivered later absent (exact when batches were transformed in
    ingest-date order, as ``fdp run`` and ``fdp backfill`` do). ``output`` is a Polars frame
    (default), a pandas frame or an Arrow table. ``adjust`` is ``raw`` (as traded, default),
    ``split`` or ``total`` (splits and dividends; the formulas are in the module docstring).

    Raises ``ReadError`` naming the unknown symbols or columns, or the range that holds no row.
    """
    config = settings or Settings()
    wanted = _symbols(symbols)
    first, last, when = _date(start, "start"), _date(end, "end"), _date(as_of, "as_of")
    if first is not None and last is not None and first > last:
        raise ReadError(f"empty range: start {first} is after end {last}", date=str(first))
    names = _columns(columns)
    if source not in SOURCES:
        raise ReadError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    if output not in OUTPUTS:
        raise ReadError(f"unknown output {output!r}; expected one of {', '.join(OUTPUTS)}")
    if adjust not in ADJUSTS:
        raise ReadError(f"unknown adjust {adjust!r}; expected one of {', '.join(ADJUSTS)}")
    reads = names if adjust == "raw" else list(dict.fromkeys([*names, *_FACTOR_INPUTS]))
    until = last if adjust == "raw" else None  # the factors need every later bar
    if source == "lake":
        found = _from_lake(config, wanted, first, until, reads, when)
    else:
        found = _from_warehouse(config, wanted, first, until, reads, when)
    if adjust != "raw":
        found = adjusted(found, adjust)
        found = (found if last is None else found.filter(pl.col("trade_date") <= last)).select(
            names
        )
    _check_found(config, found, wanted, first, last, when, source)
    if output == "pandas":
        return found.to_pandas()
    if output == "arrow":
        return found.to_arrow()
    return found


def adjusted(rows: pl.DataFrame, adjust: Adjust) -> pl.DataFrame:
    """``rows`` (sorted by key, each symbol's rows up to its last one, with
    ``_FACTOR_INPUTS``) with prices, dividends and volume adjusted (module docstring)."""
    split = pl.col("close") / pl.col("split_adjusted_close")  # F_t
    factors = rows.with_columns((1 / split).alias("_price"), split.alias("_split"))
    if adjust == "total":
        dividend = pl.col("dividend_amount") / pl.col("_split")
        previous = pl.col("split_adjusted_close").shift(1).over("symbol")
        factors = factors.with_columns((1 - dividend / previous).fill_null(1.0).alias("_step"))
        later = pl.col("_step").reverse().cum_prod().reverse().shift(-1, fill_value=1.0)
        factors = factors.with_columns(pl.col("_price") * later.over("symbol"))
    prices = [c for c in PRICES if c in rows.columns]
    return factors.with_columns(
        *((pl.col(c) * pl.col("_price")).alias(c) for c in prices),
        *(
            [(pl.col("dividend_amount") / pl.col("_split")).alias("dividend_amount")]
            if "dividend_amount" in rows.columns
            else []
        ),
        *(
            [(pl.col("volume") * pl.col("_split")).round().cast(pl.Int64).alias("volume")]
            if "volume" in rows.columns
            else []
        ),
    ).select(rows.columns)


def _symbols(symbols: str | Sequence[str] | None) -> list[str] | None:
    if symbols is None:
        return None
    given = [symbols] if isinstance(symbols, str) else list(symbols)
    if not given:
        raise ReadError("no symbols given: pass None for all of them")
    wanted = list(dict.fromkeys(s.strip().upper() for s in given))
    bad = [s for s in wanted if not TICKER_RE.match(s)]
    if bad:
        raise ReadError(f"not a ticker: {', '.join(map(repr, bad))}", symbol=bad[0])
    return wanted


def _date(value: dt.date | str | None, name: str) -> dt.date | None:
    if value is None or (isinstance(value, dt.date) and not isinstance(value, dt.datetime)):
        return value
    if isinstance(value, dt.datetime):
        return value.date()
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ReadError(f"{name} {value!r} is not a date (YYYY-MM-DD)", field=name) from None


def _columns(columns: Sequence[str] | None) -> list[str]:
    """The columns to return: the key, then those asked for (all when None)."""
    known = EnrichedStockRecord.names()
    if columns is None:
        return [*lake.KEY, *(n for n in known if n not in lake.KEY)]
    asked = [columns] if isinstance(columns, str) else list(columns)
    unknown = [c for c in asked if c not in known]
    if unknown:
        raise ReadError(
            f"unknown column(s) {', '.join(map(repr, unknown))}; known: {', '.join(known)}",
            field=unknown[0],
        )
    return [*lake.KEY, *(c for c in dict.fromkeys(asked) if c not in lake.KEY)]


def _filters(
    symbols: list[str] | None, start: dt.date | None, end: dt.date | None
) -> list[pl.Expr]:
    day = pl.col("trade_date")
    found = []
    if symbols is not None:
        found.append(
            pl.col("symbol") == symbols[0]
            if len(symbols) == 1
            else pl.col("symbol").is_in(pl.Series(symbols, dtype=pl.String).implode())
        )
    if start is not None:
        found.append(day >= start)
    if end is not None:
        found.append(day <= end)
    return found


def _months(
    have: Iterable[lake.Partition], start: dt.date | None, end: dt.date | None
) -> list[lake.Partition]:
    low = (0, 0) if start is None else (start.year, start.month)
    high = (9999, 12) if end is None else (end.year, end.month)
    return [p for p in have if low <= p <= high]


def _scan(
    settings: Settings,
    urls: list[str],
    schema: pl.Schema | None,
    columns: list[str],
    filters: list[pl.Expr],
) -> pl.LazyFrame:
    """The rows of the month files ``urls`` that pass ``filters``, as ``columns``
    (``lake.scan_files``: of ``schema``, the curated files' by default; files written before
    a column existed read it as null)."""
    frame = lake.scan_files(settings, urls, schema)
    for condition in filters:
        frame = frame.filter(condition)
    return frame.select(columns)


def _from_lake(
    settings: Settings,
    symbols: list[str] | None,
    start: dt.date | None,
    end: dt.date | None,
    names: list[str],
    as_of: dt.date | None,
) -> pl.DataFrame:
    if as_of is not None:
        end = as_of if end is None else min(end, as_of)  # no bar after its ingest date
    months = _months(lake.partitions(settings), start, end)
    if not months:
        return pl.DataFrame(schema={n: EnrichedStockRecord.polars_schema()[n] for n in names})
    filters = _filters(symbols, start, end)
    urls = [lake.partition_url(settings, p) for p in months]
    if as_of is None:
        return _scan(settings, urls, None, names, filters).sort(lake.KEY).collect()
    return _point_in_time(settings, urls, months, names, filters, as_of)


def _point_in_time(
    settings: Settings,
    urls: list[str],
    months: list[lake.Partition],
    names: list[str],
    filters: list[pl.Expr],
    as_of: dt.date,
) -> pl.DataFrame:
    """The rows valid as of ingest date ``as_of`` (see the module docstring)."""
    known = pl.col("ingest_date") <= as_of
    needed = list(dict.fromkeys([*names, "ingest_date"]))
    current = _scan(settings, urls, None, needed, filters).filter(known)
    kept = set(history.partitions(settings))
    older = [history.partition_url(settings, p) for p in months if p in kept]
    if not older:
        return current.select(names).sort(lake.KEY).collect()
    later = pl.col(history.VALID_TO) > as_of
    versions = (
        _scan(settings, older, history.schema(), [*needed, history.VALID_TO], filters)
        .filter(later)
        .collect()
    )
    chosen = (
        versions.filter(known)
        .sort(history.VERSION_KEY)
        .unique(subset=lake.KEY, keep="first", maintain_order=True)
    )
    valid_now = current.join(versions.lazy().select(lake.KEY), on=lake.KEY, how="anti")
    return pl.concat([valid_now.select(names).collect(), chosen.select(names)]).sort(lake.KEY)


def _from_warehouse(
    settings: Settings,
    symbols: list[str] | None,
    start: dt.date | None,
    end: dt.date | None,
    names: list[str],
    as_of: dt.date | None,
) -> pl.DataFrame:
    """The same read from the warehouse: its fact table, and its history table for ``as_of``
    (both loaded from the lake, run by run)."""
    from fdp.warehouse import sql
    from fdp.warehouse.connect import connect
    from fdp.warehouse.migrations import migrate

    warehouse = connect(settings.warehouse_url, settings)
    migrate(warehouse)
    params: list[object] = [*(symbols or []), *(d for d in (start, end) if d is not None)]
    shape = (len(symbols or []), start is not None, end is not None)
    if as_of is None:
        statement = sql.select_rows(warehouse.dialect, names, sql.rows_filter(*shape, "f"))
    else:
        statement = sql.select_rows_as_of(
            warehouse.dialect, names, sql.rows_filter(*shape, "h"), sql.rows_filter(*shape, "f")
        )
        params = [*params, as_of, as_of, *params, as_of, as_of]
    full = EnrichedStockRecord.polars_schema()
    schema = pl.Schema({n: full[n] for n in names})
    return warehouse.run(lambda session: session.frame(statement, schema, params))


def _check_found(
    settings: Settings,
    found: pl.DataFrame,
    symbols: list[str] | None,
    start: dt.date | None,
    end: dt.date | None,
    as_of: dt.date | None,
    source: Source,
) -> None:
    """Raise ``ReadError`` when a symbol asked for has no row: unknown to the lake, or known
    but not in the range (naming the dates it covers)."""
    got = set(found["symbol"].unique().to_list())
    missing = [s for s in symbols or [] if s not in got]
    span = f"between {start or 'the first bar'} and {end or 'the last bar'}"
    when = "" if as_of is None else f" as of ingest date {as_of}"
    if symbols is None and found.is_empty():
        raise ReadError(f"no rows in the {source} {span}{when}", date=str(start or end or ""))
    if not missing:
        return
    coverage = _coverage(settings, missing) if source == "lake" else {}
    unknown = [s for s in missing if s not in coverage]
    if unknown:
        raise ReadError(
            f"unknown symbol(s) {', '.join(unknown)}: not in the {source}",
            symbol=unknown[0],
            hint="`fdp show` or fdp.read() without symbols lists what the lake holds",
        )
    ranges = "; ".join(f"{s} has {a} to {b}" for s, (a, b) in coverage.items())
    raise ReadError(f"no rows {span}{when} for {', '.join(missing)} ({ranges})", symbol=missing[0])


def _coverage(settings: Settings, symbols: list[str]) -> dict[str, tuple[dt.date, dt.date]]:
    """The first and last trade date the lake holds for each of ``symbols`` that it holds."""
    months = lake.partitions(settings)
    if not months:
        return {}
    urls = [lake.partition_url(settings, p) for p in months]
    spans = (
        _scan(settings, urls, None, ["symbol", "trade_date"], _filters(symbols, None, None))
        .group_by("symbol")
        .agg(pl.col("trade_date").min().alias("first"), pl.col("trade_date").max().alias("last"))
        .collect()
    )
    return {s: (a, b) for s, a, b in spans.iter_rows()}
