"""The Spark engine: the same cleansing and indicators as ``_polars``, on Apache Spark 3.5 and 4.

Cleansing is Spark SQL. For the indicators Spark only moves rows: one shuffle puts every
(symbol, chunk) group in one partition, and one vectorised Python pass per partition
(``mapInArrow``) runs the Polars engine's indicator code over its groups, so the two engines
share every formula. A symbol far longer than the others (fifty years next to one) would leave
one task doing most of the work, so long series are split into chunks of ``chunk_rows`` rows,
each carrying the ``LOOKBACK`` rows before it (marked as state, so they are read but not
returned). The EMA crosses chunk borders exactly because the recursion is linear: inside a
chunk ``ema_t = A_t * ema_start + B_t``, so each chunk returns its own (A, B), the chunk start
values are composed per symbol on the driver (one row per chunk), and a join finishes every row.

The protocol methods (``cleanse``, ``enrich``) take and return Polars frames; ``cleanse_df``
and ``enrich_df`` work on Spark DataFrames for ``spark_job``, which never leaves Spark.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from fdp.engines import Cleansed
from fdp.engines._polars import FLOATS, KEY, PRICES, enrich_sorted, later_splits, position
from fdp.errors import ConfigError
from fdp.indicators import EMAS, STATE_ROWS, Ema, P
from fdp.records import (
    TICKER_PATTERN,
    CleansedRecord,
    EnrichedStockRecord,
    Frame,
    StockRecord,
)
from fdp.spark_session import (
    build_session,
    collect_arrow,
    from_arrow,
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
_STATE, _POS, _N, _LATER = "_state", "_pos", "_n", "_later"
_CHUNK, _END = "_chunk", "_end"


def _ema_parts(ema: Ema) -> tuple[str, str, str]:
    """Columns of one EMA in a chunk: A and B (``ema = A * start + B``), and its start."""
    c = ema.column
    return f"_{c}_a", f"_{c}_b", f"_{c}_start"


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
        rows = pl.DataFrame(collect_arrow(cleanse_df(from_arrow(self.session, table))))
        kept = rows.filter(pl.col("rule").is_null()).select(
            pl.col(n).cast(t) for n, t in CleansedRecord.polars_schema().items()
        )
        return Cleansed(
            Frame(CleansedRecord, kept.sort(KEY), origin="cleansed rows (spark)"), _rejected(rows)
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


def kept_df(cleansed: DataFrame) -> DataFrame:
    """The CleansedRecord rows of ``cleanse_df``'s output."""
    from pyspark.sql import functions as sf

    return cleansed.filter(sf.col("rule").isNull()).select(CleansedRecord.names())


def rejected_frame(cleansed: DataFrame) -> pl.DataFrame:
    """The rejected rows of ``cleanse_df``'s output, collected (see ``_rejected``)."""
    from pyspark.sql import functions as sf

    return _rejected(pl.DataFrame(collect_arrow(cleansed.filter(sf.col("rule").isNotNull()))))


def _rejected(rows: pl.DataFrame) -> pl.DataFrame:
    """Rejected rows in input order: StockRecord columns, rule, reason."""
    schema = StockRecord.polars_schema()
    rows = rows.filter(pl.col("rule").is_not_null()).sort(ROW)
    return rows.select(*(pl.col(n).cast(t) for n, t in schema.items()), "rule", "reason")


def _longest(bars: pl.DataFrame, state: pl.DataFrame) -> int:
    counts = pl.concat([bars.select("symbol"), state.select("symbol")])["symbol"].value_counts()
    return int(counts.select(pl.col("count").max()).item() or 0)


def cleanse_df(raw: DataFrame) -> DataFrame:
    """Every row of ``raw`` (StockRecord columns and ``_row``, the input order), cleansed or
    rejected: a kept row holds its CleansedRecord values and a null ``rule``; a rejected row
    its StockRecord values, ``rule`` and ``reason``. One shuffle finds the superseded rows."""
    from pyspark.sql import Window
    from pyspark.sql import functions as sf

    symbol = sf.upper("symbol")
    shaped = sf.col("timestamp").rlike(DATE_SHAPE)
    df = raw.withColumns(
        {
            "_symbol": symbol,
            # Spark's own date cast is fast but wants 4-digit years; the pattern parses the
            # rest. Both return null instead of failing (try_to_date is Spark 4's only).
            "trade_date": sf.when(
                shaped,
                sf.coalesce(
                    sf.expr("try_cast(timestamp AS DATE)"),
                    sf.try_to_timestamp("timestamp", sf.lit("y-M-d")).cast("date"),
                ),
            ),
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
        (
            "after_ingest_date",
            sf.col("trade_date") > sf.col("ingest_date"),
            sf.format_string(
                "trade date %s is after its ingest date %s",
                "timestamp",
                sf.col("ingest_date").cast("string"),
            ),
        ),
        *(
            (
                f"non_finite_{name}",
                sf.isnan(name) | (sf.abs(name) == sf.lit(math.inf)),
                sf.concat_ws(
                    " ", sf.lit(name), sf.col(name).cast("string"), sf.lit("is not a finite number")
                ),
            )
            for name in FLOATS
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
    # Valid rows first: the first one of a key is kept, later valid ones are superseded.
    latest = Window.partitionBy("_symbol", "trade_date").orderBy(
        sf.col("rule").isNull().desc(),
        sf.col("ingest_date").desc(),
        sf.col("source_file").desc(),
        sf.col(ROW).desc(),
    )
    superseded = sf.col("rule").isNull() & (sf.row_number().over(latest) > 1)
    df = df.withColumns(
        {
            "rule": sf.when(superseded, sf.lit("duplicate_key")).otherwise(sf.col("rule")),
            "reason": sf.when(
                superseded,
                sf.format_string(
                    "superseded by a later ingest of %s %s", "_symbol", sf.col("trade_date")
                ),
            ).otherwise(sf.col("reason")),
        }
    )
    kept = sf.col("rule").isNull()
    cleansed = {
        "symbol": sf.col("_symbol"),
        "volume": sf.coalesce("volume", sf.lit(0).cast("long")),
        "dividend_amount": sf.coalesce("dividend_amount", sf.lit(0.0)),
        "split_coefficient": sf.coalesce("split_coefficient", sf.lit(1.0)),
    }
    return df.withColumns(
        {name: sf.when(kept, value).otherwise(sf.col(name)) for name, value in cleansed.items()}
    ).drop("_symbol")


def enrich_df(
    bars: DataFrame,
    state: DataFrame,
    *,
    processed_at: dt.datetime,
    chunk_rows: int | None,
) -> DataFrame:
    """EnrichedStockRecord rows for every row of ``bars`` (the contract of ``Engine.enrich``),
    unsorted; ``chunk_rows`` splits longer series into chunks (None: one group per symbol)."""
    df = _with_state(bars, state)
    partitions = int(str(df.sparkSession.conf.get("spark.sql.shuffle.partitions", "1")))
    long = [] if chunk_rows is None else _long_symbols(df, chunk_rows)
    if chunk_rows is not None and long:
        df = _with_chunk_columns(df, long, chunk_rows)
    else:
        df = _unchunked(df)
    chunked = bool(long)
    # A fixed partition count: adaptive execution would merge these small-in-bytes but
    # compute-heavy partitions into one task and undo the chunking.
    schema = _output_schema(chunked)
    df = df.repartition(partitions, "symbol", _CHUNK).mapInArrow(
        partial(_enrich_partition, processed_at=processed_at, schema=schema),
        spark_struct(schema),
    )
    if chunked:
        df = _with_chunk_starts(df.localCheckpoint(), long)
    return df.select(EnrichedStockRecord.names())


def _with_state(bars: DataFrame, state: DataFrame) -> DataFrame:
    """New rows (P and EMAs still null) and state rows (their stored P and EMAs), flagged."""
    from pyspark.sql import functions as sf

    bar_cols = ["symbol", "trade_date", *PRICES, "volume", "dividend_amount"]
    bar_cols += ["split_coefficient", "ingest_date"]
    new = bars.select(
        *bar_cols,
        sf.lit(None).cast("double").alias(P),
        *(sf.lit(None).cast("double").alias(e.column) for e in EMAS),
        sf.lit(False).alias(_STATE),
    )
    old = state.select(*bar_cols, P, *(e.column for e in EMAS), sf.lit(True).alias(_STATE))
    return new.unionByName(old)


def _long_symbols(df: DataFrame, chunk_rows: int) -> list[str]:
    """Symbols with more than ``chunk_rows`` rows (a small aggregate, collected)."""
    from pyspark.sql import functions as sf

    counts = df.groupBy("symbol").count().filter(sf.col("count") > chunk_rows)
    return sorted(r["symbol"] for r in counts.collect())


def _unchunked(df: DataFrame) -> DataFrame:
    """Every symbol one group: chunk 0, later splits found in the group itself."""
    from pyspark.sql import functions as sf

    return df.withColumns({_CHUNK: sf.lit(0).cast("long"), _LATER: sf.lit(None).cast("double")})


def _with_chunk_columns(df: DataFrame, long: list[str], chunk_rows: int) -> DataFrame:
    """Rows of the ``long`` symbols numbered by date and split into chunks, each row carrying
    the product of the split coefficients of the symbol's later rows (which a chunk does not
    see); the other symbols stay whole."""
    from pyspark.sql import Window
    from pyspark.sql import functions as sf

    is_long = sf.col("symbol").isin(long)
    by_date = Window.partitionBy("symbol").orderBy("trade_date")
    later = (
        Window.partitionBy("symbol")
        .orderBy(sf.col("trade_date").desc())
        .rowsBetween(Window.unboundedPreceding, -1)
    )
    numbered = df.filter(is_long).select(
        "*",
        (sf.row_number().over(by_date) - 1).alias(_POS),
        sf.count(sf.lit(1)).over(Window.partitionBy("symbol")).alias(_N),
        sf.product("split_coefficient").over(later).alias(_LATER),
    )
    chunks = _with_chunks(numbered, chunk_rows).drop(_POS, _N)
    return _unchunked(df.filter(~is_long)).unionByName(chunks)


def _with_chunks(df: DataFrame, chunk_rows: int) -> DataFrame:
    """Each row in its own chunk, and again as look-back in the next one when it is among the
    last ``LOOKBACK`` rows of a chunk that has a successor."""
    from pyspark.sql import functions as sf

    own = sf.floor(sf.col(_POS) / chunk_rows)
    tail = (sf.col(_POS) % chunk_rows >= chunk_rows - LOOKBACK) & (
        (own + 1) * chunk_rows < sf.col(_N)
    )
    chunks = sf.when(tail, sf.array(own, own + 1)).otherwise(sf.array(own))
    return df.withColumn(_CHUNK, sf.explode(chunks))


def _output_schema(chunked: bool) -> pa.Schema:
    """What the Python pass returns: EnrichedStockRecord, plus per chunk A and B of each EMA
    and the flag of a group's last row when long series are chunked."""
    schema = EnrichedStockRecord.arrow_schema()
    if not chunked:
        return schema
    extra = [pa.field(_CHUNK, pa.int64(), False), pa.field(_END, pa.bool_(), False)]
    extra += [pa.field(n, pa.float64()) for e in EMAS for n in _ema_parts(e)[:2]]
    return pa.schema([*schema, *extra])


def _enrich_partition(
    batches: Iterator[pa.RecordBatch], *, processed_at: dt.datetime, schema: pa.Schema
) -> Iterator[pa.RecordBatch]:
    """The Python pass over one shuffle partition (whole groups, in no order): the groups of
    each chunk number hold distinct symbols, so each chunk number is one Polars computation
    over all its symbols at once. Runs in the Python workers."""
    received = list(batches)
    if not received:
        return
    rows = pl.DataFrame(pa.Table.from_batches(received))
    for (chunk,), part in sorted(rows.partition_by(_CHUNK, as_dict=True).items()):
        out = _enrich_chunk(part, chunk, processed_at)
        if _CHUNK in schema.names:
            out = _with_ema_factors(out, chunk).with_columns(
                pl.lit(chunk, pl.Int64).alias(_CHUNK),
                (pl.col("symbol") != pl.col("symbol").shift(-1)).fill_null(True).alias(_END),
            )
        yield from out.select(schema.names).to_arrow().cast(schema).to_batches()


def _enrich_chunk(rows: pl.DataFrame, chunk: int, processed_at: dt.datetime) -> pl.DataFrame:
    """Enriched rows of one chunk number, through the Polars engine: P is set first (a chunk
    after the first also divides by the splits after its last row), then the look-back rows of
    a later chunk become state rows without an EMA, so the EMA is the one a symbol would have
    if it had no seed before the chunk (``C``; ``_with_chunk_starts`` finishes it)."""
    state = pl.col(_STATE)
    later = pl.coalesce(_LATER, later_splits())
    rows = rows.sort(KEY).with_columns(
        pl.when(state).then(pl.col(P)).otherwise(pl.col("close") / later).alias(P)
    )
    if chunk > 0:
        rows = rows.with_columns(
            (state | (position() < LOOKBACK)).alias(_STATE),
            *(pl.lit(None, pl.Float64).alias(e.column) for e in EMAS),
        )
    return enrich_sorted(rows.drop(_CHUNK, _LATER), processed_at)


def _with_ema_factors(rows: pl.DataFrame, chunk: int) -> pl.DataFrame:
    """A and B of each EMA over a chunk's own (enriched) rows: ``ema = A * start + B`` for the
    EMA ``start`` just before the chunk (A = (1 - alpha) ** steps, B the recursion from 0; a
    missing P is no step). Null in a symbol's first chunk, which needs no start."""
    if chunk == 0:
        return rows.with_columns(
            pl.lit(None, pl.Float64).alias(n) for e in EMAS for n in _ema_parts(e)[:2]
        )
    group, steps, p = pl.col("_group"), pl.col("_steps"), pl.col(P)
    rows = rows.with_columns(pl.col("symbol").rle_id().alias("_group"))
    rows = rows.with_columns(p.is_not_null().cast(pl.Int64).cum_sum().over(group).alias("_steps"))
    factors = []
    for ema in EMAS:
        a, b = _ema_parts(ema)[:2]
        # Polars starts the recursion at its first input: alpha * P there is the step from 0.
        x = pl.when(steps == 1).then(p * ema.alpha).otherwise(p)
        value = x.ewm_mean(alpha=ema.alpha, adjust=False, ignore_nulls=True).over(group)
        factors.append(pl.when(steps > 0).then(value.forward_fill()).otherwise(0.0).alias(b))
        factors.append(pl.lit(1.0 - ema.alpha).pow(steps).alias(a))
    return rows.with_columns(factors).drop("_group", "_steps")


def _with_chunk_starts(df: DataFrame, long: list[str]) -> DataFrame:
    """Every EMA of the chunked rows finished: ``A * start + B`` where the symbol had a seed
    before the chunk, ``C`` (the chunk's own value) where not. Each chunk's start is composed
    on the driver from the last row of every earlier chunk (one small row per chunk)."""
    from pyspark.sql import functions as sf

    parts = [c for e in EMAS for c in (e.column, *_ema_parts(e)[:2])]
    last = df.filter(sf.col(_END) & sf.col("symbol").isin(long))
    ends = collect_arrow(last.select("symbol", _CHUNK, *parts))
    ends = ends.sort_by([("symbol", "ascending"), (_CHUNK, "ascending")]).to_pylist()
    starts: list[tuple[Any, ...]] = []
    running: dict[str, float | None] = {}
    for end in ends:
        if end[_CHUNK] == 0:
            running = {e.column: None for e in EMAS}
        for e in EMAS:
            a, b, _ = _ema_parts(e)
            s = running[e.column]
            running[e.column] = end[e.column] if s is None else end[a] * s + end[b]
        starts.append((end["symbol"], end[_CHUNK] + 1, *(running[e.column] for e in EMAS)))
    columns = ["symbol string", f"{_CHUNK} long", *(f"{_ema_parts(e)[2]} double" for e in EMAS)]
    table = df.sparkSession.createDataFrame(starts, ", ".join(columns))
    df = df.join(sf.broadcast(table), ["symbol", _CHUNK], "left")
    emas: dict[str, Column] = {}
    for e in EMAS:
        factor, offset, start = (sf.col(c) for c in _ema_parts(e))
        value = _finite(factor * start + offset)
        emas[e.column] = sf.when(start.isNull(), sf.col(e.column)).otherwise(value)
    return df.withColumns(emas)


def _finite(value: Column) -> Column:
    """``value`` where finite, else null (never inf or NaN in the output)."""
    from pyspark.sql import functions as sf

    return sf.when(~sf.isnan(value) & (sf.abs(value) != sf.lit(math.inf)), value)
