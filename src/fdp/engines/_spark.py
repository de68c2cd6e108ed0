"""The Spark engine: the same cleansing and indicators as ``_polars``, on Apache Spark.

Row-local values and the rolling windows are Spark SQL window functions. The EMA is a
recursion, computed exactly per (symbol, chunk) in a vectorised Arrow function. A symbol far
longer than the others (fifty years next to one) would leave one task doing most of the work,
so long series are split into chunks of ``chunk_rows`` rows, each carrying the ``STATE_ROWS``
rows before it as look-back for the windows. The EMA crosses chunk borders exactly because the
recursion is linear: inside a chunk ``ema_t = A_t * ema_start + B_t``, so each chunk computes
its own (A, B), the chunk start values are composed per symbol on the driver (one row per
chunk), and a join finishes every row.

The protocol methods (``cleanse``, ``enrich``) take and return Polars frames; ``cleanse_df``
and ``enrich_df`` work on Spark DataFrames for ``spark_job``, which never leaves Spark.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from fdp.engines import Cleansed
from fdp.engines._polars import KEY, PRICES
from fdp.errors import ConfigError
from fdp.indicators import EMAS, PERCENT, SMAS, STATE_ROWS, VOLATILITY, Ema, P
from fdp.records import (
    TICKER_PATTERN,
    CleansedRecord,
    EnrichedStockRecord,
    Frame,
    StockRecord,
)
from fdp.spark_session import (
    build_session,
    shuffle_partitions,
    spark_struct,
    to_polars,
    to_spark,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

LOOKBACK = STATE_ROWS
"""Rows before a chunk that its windows need: the same rows an incremental run needs."""

MIN_CHUNK_ROWS = 20 * LOOKBACK
"""Automatic chunks are at least this long, so the duplicated look-back stays under 5 %."""

DATE_SHAPE = r"^[0-9]{1,4}-[0-9]{1,2}-[0-9]{1,2}$"
"""What a vendor date looks like before it is parsed as year-month-day."""

ROW = "_row"
_STATE, _SEED, _POS, _N, _NSTATE, _LATER = "_state", "_seed", "_pos", "_n", "_nstate", "_later"
_CHUNK, _OWN = "_chunk", "_own"


def _ema_parts(ema: Ema) -> tuple[str, str, str, str]:
    """Columns of one EMA: seed SMA, value if unseeded before the chunk, and A, B."""
    c = ema.column
    return f"_{c}_sma", f"_{c}_c", f"_{c}_a", f"_{c}_b"


@dataclass(slots=True)
class SparkEngine:
    """Cleansing and indicators on Spark; ``chunk_rows=None`` picks chunks from the input
    size, ``skew=False`` keeps each symbol whole (one group, one task)."""

    session: SparkSession
    chunk_rows: int | None = None
    skew: bool = True
    name: str = "spark"

    @classmethod
    def local(cls, **options: Any) -> SparkEngine:
        """An engine on the active session, or on a new ``local[*]`` one."""
        return cls(build_session("local[*]"), **options)

    def cleanse(self, raw: Frame[StockRecord]) -> Cleansed:
        table = raw.df.with_row_index(ROW).with_columns(pl.col(ROW).cast(pl.Int64)).to_arrow()
        self.size_shuffle(table.num_rows)
        raw_df = self.session.createDataFrame(table, spark_struct(table)).persist()
        kept, rejected = cleanse_df(raw_df)
        rows = to_polars(kept, CleansedRecord, origin="cleansed rows (spark)")
        dropped = rejected_frame(rejected)
        raw_df.unpersist()
        return Cleansed(
            Frame(CleansedRecord, rows.df.sort(KEY), origin="cleansed rows (spark)"), dropped
        )

    def enrich(
        self,
        bars: Frame[CleansedRecord],
        state: Frame[EnrichedStockRecord],
        *,
        processed_at: dt.datetime,
    ) -> Frame[EnrichedStockRecord]:
        rows = len(bars) + len(state)
        self.size_shuffle(rows)
        longest = _longest(bars.df, state.df)
        df = enrich_df(
            to_spark(self.session, bars),
            to_spark(self.session, state),
            processed_at=processed_at,
            chunk_rows=self.chunk_size(rows) if longest > self.chunk_size(rows) else None,
        )
        out = to_polars(df, EnrichedStockRecord, origin="enriched (spark)")
        return Frame(EnrichedStockRecord, out.df.sort(KEY), origin="enriched (spark)")

    def chunk_size(self, rows: int) -> int:
        """Rows per chunk of a long series (``rows``: the whole input)."""
        if not self.skew:
            return max(rows, 1)
        if self.chunk_rows is not None:
            if self.chunk_rows <= LOOKBACK:
                raise ConfigError(f"chunk_rows must exceed the {LOOKBACK} look-back rows")
            return self.chunk_rows
        partitions = int(str(self.session.conf.get("spark.sql.shuffle.partitions", "1")))
        return max(MIN_CHUNK_ROWS, math.ceil(rows / (2 * partitions)))

    def size_shuffle(self, rows: int) -> None:
        """Set the shuffle partition count for an input of ``rows`` rows."""
        parallelism = self.session.sparkContext.defaultParallelism
        self.session.conf.set("spark.sql.shuffle.partitions", shuffle_partitions(rows, parallelism))


def rejected_frame(rejected: DataFrame) -> pl.DataFrame:
    """Rejected rows from ``cleanse_df`` in input order: StockRecord columns, rule, reason."""
    df = pl.DataFrame(rejected.toArrow()).sort(ROW)
    schema = StockRecord.polars_schema()
    return df.select(*(pl.col(n).cast(t) for n, t in schema.items()), "rule", "reason")


def _longest(bars: pl.DataFrame, state: pl.DataFrame) -> int:
    counts = pl.concat([bars.select("symbol"), state.select("symbol")])["symbol"].value_counts()
    return int(counts.select(pl.col("count").max()).item() or 0)


def cleanse_df(raw: DataFrame) -> tuple[DataFrame, DataFrame]:
    """CleansedRecord rows, and the rejected StockRecord rows with ``rule``, ``reason`` and
    ``_row``; ``raw`` holds StockRecord columns and ``_row``, the input order."""
    from pyspark.sql import Window
    from pyspark.sql import functions as sf

    symbol = sf.upper("symbol")
    shaped = sf.col("timestamp").rlike(DATE_SHAPE)
    df = raw.withColumns(
        {
            "_symbol": symbol,
            "trade_date": sf.when(shaped, sf.try_to_date("timestamp", "y-M-d")),
        }
    )
    rules: list[tuple[str, Column, Column]] = [
        (
            "symbol_pattern",
            ~sf.col("_symbol").rlike(TICKER_PATTERN),
            sf.format_string("symbol %s does not match %s", "symbol", sf.lit(TICKER_PATTERN)),
        ),
        (
            "trade_date",
            sf.col("trade_date").isNull(),
            sf.format_string("timestamp %s is not a YYYY-MM-DD date", "timestamp"),
        ),
        *(
            (
                f"negative_{name}",
                sf.col(name) < 0,
                sf.concat_ws(" ", sf.lit(name), sf.col(name).cast("string"), sf.lit("< 0")),
            )
            for name in (*PRICES, "volume", "dividend_amount")
        ),
        (
            "split_coefficient",
            sf.col("split_coefficient") <= 0,
            sf.format_string("split_coefficient %s <= 0", "split_coefficient"),
        ),
    ]
    rule: Column = sf.lit(None).cast("string")
    reason: Column = sf.lit(None).cast("string")
    for name, failed, why in reversed(rules):
        hit = sf.coalesce(failed, sf.lit(False))
        rule = sf.when(hit, sf.lit(name)).otherwise(rule)
        reason = sf.when(hit, why).otherwise(reason)
    df = df.withColumns({"rule": rule, "reason": reason})
    latest = Window.partitionBy("_symbol", "trade_date").orderBy(
        sf.col("ingest_date").desc(), sf.col("source_file").desc(), sf.col(ROW).desc()
    )
    kept = df.filter(sf.col("rule").isNull()).withColumn("_rank", sf.row_number().over(latest))
    superseded = kept.filter(sf.col("_rank") > 1).withColumns(
        {
            "rule": sf.lit("duplicate_key"),
            "reason": sf.format_string(
                "superseded by a later ingest of %s %s", "_symbol", sf.col("trade_date")
            ),
        }
    )
    rejected_cols = [*StockRecord.names(), "rule", "reason", ROW]
    rejected = (
        df.filter(sf.col("rule").isNotNull())
        .select(rejected_cols)
        .unionByName(superseded.select(rejected_cols))
    )
    rows = kept.filter(sf.col("_rank") == 1).withColumns(
        {
            "symbol": sf.col("_symbol"),
            "volume": sf.coalesce("volume", sf.lit(0).cast("long")),
            "dividend_amount": sf.coalesce("dividend_amount", sf.lit(0.0)),
            "split_coefficient": sf.coalesce("split_coefficient", sf.lit(1.0)),
        }
    )
    return rows.select(CleansedRecord.names()), rejected


def enrich_df(
    bars: DataFrame,
    state: DataFrame,
    *,
    processed_at: dt.datetime,
    chunk_rows: int | None,
) -> DataFrame:
    """EnrichedStockRecord rows for every row of ``bars`` (the contract of ``Engine.enrich``),
    unsorted; ``chunk_rows`` splits longer series into chunks (None: one group per symbol)."""
    from pyspark.sql import functions as sf

    df = _with_positions(bars, state)
    partitions = int(str(df.sparkSession.conf.get("spark.sql.shuffle.partitions", "1")))
    # A fixed count: adaptive execution would merge these small-in-bytes but compute-heavy
    # partitions into one task and undo the chunking.
    df = _with_chunks(df, chunk_rows).repartition(partitions, "symbol", _CHUNK)
    df = _with_windows(df)
    out_schema = spark_struct_of(df, extra=[p for e in EMAS for p in _ema_parts(e)[1:]])
    df = df.groupBy("symbol", _CHUNK).applyInArrow(_ema_chunk, out_schema)
    if chunk_rows is None:
        emas = {e.column: sf.col(_ema_parts(e)[1]) for e in EMAS}
    else:
        df = df.localCheckpoint()
        starts = _chunk_starts(df, chunk_rows)
        df = df.join(sf.broadcast(starts), ["symbol", _CHUNK], "left")
        emas = {
            e.column: sf.when(
                sf.col(f"_{e.column}_start").isNull(), sf.col(_ema_parts(e)[1])
            ).otherwise(
                sf.col(_ema_parts(e)[2]) * sf.col(f"_{e.column}_start") + sf.col(_ema_parts(e)[3])
            )
            for e in EMAS
        }
    df = df.withColumns({name: _finite(value) for name, value in emas.items()})
    return _with_calendar(df, processed_at).select(EnrichedStockRecord.names())


def spark_struct_of(df: DataFrame, *, extra: list[str]) -> Any:
    """The schema of ``df`` plus nullable double columns ``extra``."""
    from pyspark.sql import types as st

    fields = [*df.schema.fields, *(st.StructField(n, st.DoubleType(), True) for n in extra)]
    return st.StructType(fields)


def _with_positions(bars: DataFrame, state: DataFrame) -> DataFrame:
    """State and new rows of each symbol with their position, counts and P (the split-adjusted
    close; state rows keep their stored P and EMAs)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as sf

    bar_cols = [
        "symbol",
        "trade_date",
        *PRICES,
        "volume",
        "dividend_amount",
        "split_coefficient",
        "ingest_date",
    ]
    new = bars.select(
        *bar_cols,
        sf.lit(None).cast("double").alias(P),
        *(sf.lit(None).cast("double").alias(e.column) for e in EMAS),
        sf.lit(False).alias(_STATE),
    )
    old = state.select(*bar_cols, P, *(e.column for e in EMAS), sf.lit(True).alias(_STATE))
    by_date = Window.partitionBy("symbol").orderBy("trade_date")
    later = (
        Window.partitionBy("symbol")
        .orderBy(sf.col("trade_date").desc())
        .rowsBetween(Window.unboundedPreceding, -1)
    )
    whole = Window.partitionBy("symbol")
    df = new.unionByName(old).select(
        "*",
        (sf.row_number().over(by_date) - 1).alias(_POS),
        sf.count(sf.lit(1)).over(whole).alias(_N),
        sf.sum(sf.col(_STATE).cast("int")).over(whole).alias(_NSTATE),
        sf.product("split_coefficient").over(later).alias(_LATER),
    )
    return df.withColumns(
        {
            P: sf.when(sf.col(_STATE), sf.col(P)).otherwise(
                sf.try_divide("close", sf.coalesce(_LATER, sf.lit(1.0)))
            ),
            _SEED: sf.col(_STATE) & (sf.col(_POS) == sf.col(_NSTATE) - 1),
        }
    ).drop(_LATER, _NSTATE)


def _with_chunks(df: DataFrame, chunk_rows: int | None) -> DataFrame:
    """Each row in its own chunk, and again as look-back in the next one when it is among the
    last ``LOOKBACK`` rows of a chunk that has a successor."""
    from pyspark.sql import functions as sf

    if chunk_rows is None:
        return df.withColumns({_CHUNK: sf.lit(0).cast("long"), _OWN: sf.lit(True)})
    own = sf.floor(sf.col(_POS) / chunk_rows)
    tail = (sf.col(_POS) % chunk_rows >= chunk_rows - LOOKBACK) & (
        (own + 1) * chunk_rows < sf.col(_N)
    )
    chunks = sf.when(tail, sf.array(own, own + 1)).otherwise(sf.array(own))
    return df.withColumn(_CHUNK, sf.explode(chunks)).withColumn(_OWN, sf.col(_CHUNK) == own)


def _with_windows(df: DataFrame) -> DataFrame:
    """Returns, ranges, volume change, SMAs (and the EMAs' seed SMAs) and volatility."""
    from pyspark.sql import Window
    from pyspark.sql import functions as sf

    rows = Window.partitionBy("symbol", _CHUNK).orderBy(_POS)
    pos = sf.col(_POS)

    def sma(window: int) -> Column:
        frame = rows.rowsBetween(1 - window, 0)
        full = (pos >= window - 1) & (sf.count(P).over(frame) == window)
        return _finite(sf.when(full, sf.avg(P).over(frame)))

    previous_volume = sf.lag("volume").over(rows) * sf.col("split_coefficient")
    df = df.withColumns(
        {
            "daily_return": _finite(
                sf.when(pos >= 1, (sf.try_divide(P, sf.lag(P).over(rows)) - 1) * PERCENT)
            ),
            "daily_range": sf.col("high") - sf.col("low"),
            "daily_range_pct": _finite(
                sf.when(
                    sf.col("close") > 0,
                    (sf.col("high") - sf.col("low")) / sf.col("close") * PERCENT,
                )
            ),
            "volume_change_pct": _finite(
                sf.when(
                    (pos >= 1) & (previous_volume != 0),
                    (sf.col("volume") / previous_volume - 1) * PERCENT,
                )
            ),
            **{s.column: sma(s.window) for s in SMAS},
            **{_ema_parts(e)[0]: sma(e.span) for e in EMAS},
        }
    )
    frame = rows.rowsBetween(1 - VOLATILITY.window, 0)
    returns = sf.col("daily_return")
    full = (pos >= VOLATILITY.first_row - 1) & (sf.count(returns).over(frame) == VOLATILITY.window)
    if VOLATILITY.ddof != 1:
        raise ConfigError("the Spark engine computes the sample (ddof 1) deviation only")
    return df.withColumn(
        VOLATILITY.column, _finite(sf.when(full, sf.stddev_samp(returns).over(frame)))
    )


def _recursion(start: float, values: np.ndarray, alpha: float) -> np.ndarray:
    """``start`` followed by ``y = alpha * x + (1 - alpha) * y`` over ``values``, exactly."""
    keep = 1.0 - alpha
    steps: Callable[[float, float], float] = lambda y, x: alpha * x + keep * y  # noqa: E731
    return np.fromiter(accumulate(values.tolist(), steps, initial=start), float, values.size + 1)


def _ema_chunk(table: pa.Table) -> pa.Table:
    """One (symbol, chunk): per own new row, each EMA as ``C`` (its value when the symbol had
    no seed before the chunk) and as ``A * start + B`` (when it had, ``start`` being the EMA
    just before the chunk). Runs in the Python workers."""
    table = table.filter(table[_OWN]).sort_by(_POS)
    state = table[_STATE].to_numpy(zero_copy_only=False)
    p = pc.fill_null(table[P], 0.0).to_numpy(zero_copy_only=False)
    valid = pc.is_valid(table[P]).to_numpy(zero_copy_only=False) & ~state
    first_chunk = table.num_rows == 0 or table[_CHUNK][0].as_py() == 0
    seed_state = table[_SEED].to_numpy(zero_copy_only=False)
    index = np.arange(table.num_rows)
    columns: dict[str, np.ndarray] = {}
    for ema in EMAS:
        seed_sma, c_col, a_col, b_col = _ema_parts(ema)
        stored = pc.fill_null(table[ema.column], math.nan).to_numpy(zero_copy_only=False)
        sma = pc.fill_null(table[seed_sma], math.nan).to_numpy(zero_copy_only=False)
        has_stored = pc.is_valid(table[ema.column]).to_numpy(zero_copy_only=False) & seed_state
        has_sma = pc.is_valid(table[seed_sma]).to_numpy(zero_copy_only=False) & ~state
        candidate = np.where(has_stored, stored, sma)
        seeded = np.flatnonzero(has_stored | has_sma)
        c = np.full(table.num_rows, math.nan)
        if seeded.size:
            j = seeded[0]
            after = valid & (index > j)
            values = _recursion(float(candidate[j]), p[after], ema.alpha)
            c[j:] = values[np.cumsum(after)[j:]]
        columns[c_col] = c
        if first_chunk:
            columns[a_col] = columns[b_col] = np.full(table.num_rows, math.nan)
        else:
            steps = np.cumsum(valid)
            columns[b_col] = _recursion(0.0, p[valid], ema.alpha)[steps]
            columns[a_col] = (1.0 - ema.alpha) ** steps.astype(float)
    out = table
    for name, values in columns.items():
        out = out.append_column(name, pa.array(values, pa.float64(), mask=np.isnan(values)))
    return out.filter(pc.invert(out[_STATE]))


def _chunk_starts(df: DataFrame, chunk_rows: int) -> DataFrame:
    """Per (symbol, chunk >= 1): each EMA just before the chunk, composed on the driver from the
    last row of every earlier chunk (one small row per chunk)."""
    from pyspark.sql import functions as sf

    last = ((sf.col(_POS) + 1) % chunk_rows == 0) & (sf.col(_POS) < sf.col(_N) - 1)
    parts = [p for e in EMAS for p in _ema_parts(e)[1:]]
    ends = df.filter(sf.col(_OWN) & last).select("symbol", _CHUNK, *parts).toArrow()
    ends = ends.sort_by([("symbol", "ascending"), (_CHUNK, "ascending")])
    values = ends.to_pydict()
    starts: dict[str, list[Any]] = {"symbol": [], _CHUNK: []}
    starts |= {f"_{e.column}_start": [] for e in EMAS}
    running: dict[str, float | None] = {}
    for i, symbol in enumerate(values["symbol"]):
        if values[_CHUNK][i] == 0:
            running = {e.column: None for e in EMAS}
        starts["symbol"].append(symbol)
        starts[_CHUNK].append(values[_CHUNK][i] + 1)
        for e in EMAS:
            _, c, a, b = _ema_parts(e)
            s = running[e.column]
            running[e.column] = values[c][i] if s is None else values[a][i] * s + values[b][i]
            starts[f"_{e.column}_start"].append(running[e.column])
    table = pa.table(
        starts,
        schema=pa.schema(
            [
                ("symbol", pa.string()),
                (_CHUNK, pa.int64()),
                *((f"_{e.column}_start", pa.float64()) for e in EMAS),
            ]
        ),
    )
    return df.sparkSession.createDataFrame(table, spark_struct(table))


def _finite(value: Column) -> Column:
    """``value`` where finite, else null (never inf or NaN in the output)."""
    from pyspark.sql import functions as sf

    return sf.when(~sf.isnan(value) & (sf.abs(value) != sf.lit(math.inf)), value)


def _with_calendar(df: DataFrame, processed_at: dt.datetime) -> DataFrame:
    from pyspark.sql import functions as sf

    day = sf.col("trade_date")
    return df.withColumns(
        {
            "price_id": sf.concat_ws("_", "symbol", sf.date_format(day, "yyyyMMdd")),
            "trade_timestamp": day.cast("timestamp"),
            "year": sf.year(day),
            "quarter": sf.quarter(day),
            "month": sf.month(day),
            "day": sf.dayofmonth(day),
            "day_of_week": sf.weekday(day) + 1,
            "processing_timestamp": sf.lit(processed_at.astimezone(dt.UTC)).cast("timestamp"),
        }
    )
