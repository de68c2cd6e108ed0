"""The quality gate on Spark: the suite validated on the executors, nothing proportional to
the batch on the driver.

The executors read the raw batch (``SparkEngine.read``, the fingerprint of exactly those
bytes), GX runs its Spark implementation of the suite on it (NaN filled as +inf by Spark, as
``fdp.quality.runner`` explains), and fdp's row masks run where the rows are: each task
evaluates the same Polars expressions (``runner.row_flags``) on its rows and returns only the
flagged ones. A uniqueness rule compares rows with each other, so the rows are first
hash-partitioned by the columns every uniqueness key shares: rows that could be duplicates
meet in one task. The driver collects the flagged rows (bounded by the rejections), puts them
in the order of a Polars read (``positioned``) and builds the report and rejected rows with the
Polars path's own code, so both engines give the same results.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path

import polars as pl
import pyarrow as pa

from fdp.config import Settings
from fdp.engines._spark import POSITION, POSITIONED_SCHEMA, SparkBatch, SparkEngine, positioned
from fdp.errors import ConfigError
from fdp.quality import splits
from fdp.quality.runner import (
    Validation,
    assemble,
    fill_nan,
    gx_results,
    row_flags,
    with_split_rule,
)
from fdp.quality.suite import Rule, load_suite, read_rules
from fdp.records import StockRecord
from fdp.spark_session import (
    collect_arrow,
    parallelism,
    session,
    shuffle_partitions,
    spark_struct,
)


def validate_raw_on_spark(settings: Settings, source: str, ingest_date: dt.date) -> Validation:
    """``runner.validate_raw`` on the session of ``fdp.spark_session.session``."""
    batch = SparkEngine(session(settings)).read(settings, source, ingest_date)
    try:
        done = validate_spark(batch, source=source, ingest_date=ingest_date)
        return with_split_rule(done, _held_back(settings, batch))
    finally:
        batch.cached.unpersist()


def validate_spark(
    batch: SparkBatch, *, source: str, ingest_date: dt.date, suite_path: Path | None = None
) -> Validation:
    """Validate ``batch`` with the whole suite on its executors and collect every failure;
    write nothing. The report carries the batch's fingerprint."""
    from pyspark.sql import functions as sf

    name, rules, _ = read_rules(suite_path)
    floats = [n for n, t in StockRecord.polars_schema().items() if t.is_float()]
    filled = batch.frame.select(
        *(
            sf.nanvl(sf.col(n), sf.lit(float("inf"))).alias(n) if n in floats else sf.col(n)
            for n in StockRecord.names()
        )
    )
    results = gx_results("spark", filled, load_suite(suite_path))
    row_rules = [r for r in rules if r.row_level]
    flagged = _flagged(batch, row_rules)
    done = assemble(
        name,
        rules,
        results,
        flagged.select(StockRecord.names()),
        flagged.select(r.name for r in row_rules),
        source=source,
        ingest_date=ingest_date,
        engine="spark",
        row_count=batch.rows,
    )
    return Validation(replace(done.report, fingerprint=batch.fingerprint), done.rejected)


def _flagged(batch: SparkBatch, rules: list[Rule]) -> pl.DataFrame:
    """The batch's rows some row-level rule flags, with one column per rule, in batch order."""
    if not rules:
        return pl.DataFrame(schema=StockRecord.polars_schema())
    rows = positioned(batch)
    key = _colocating_key(rules)
    if key:
        tasks = shuffle_partitions(batch.rows, parallelism(rows.sparkSession))
        rows = rows.repartition(tasks, *key)
    schema = pa.schema([*POSITIONED_SCHEMA, *(pa.field(r.name, pa.bool_()) for r in rules)])
    flag = partial(_flag_task, rules=rules, schema=schema)
    table = collect_arrow(rows.mapInArrow(flag, spark_struct(schema)))
    return pl.DataFrame(table).sort(POSITION).drop(POSITION)


def _colocating_key(rules: list[Rule]) -> list[str]:
    """The columns every uniqueness rule's key holds: rows equal on a key are equal on
    these, so hash-partitioning by them puts them in one task. Empty without such rules."""
    keys = [r.columns for r in rules if r.type == "expect_compound_columns_to_be_unique"]
    if not keys:
        return []
    shared = [c for c in keys[0] if all(c in k for k in keys[1:])]
    if not shared:
        raise ConfigError(
            f"the uniqueness rules' keys {keys} share no column: the Spark engine cannot put"
            " the rows each compares in one task; give them a common column"
        )
    return shared


def _flag_task(
    batches: Iterator[pa.RecordBatch], *, rules: list[Rule], schema: pa.Schema
) -> Iterator[pa.RecordBatch]:
    """On an executor: this task's rows that a rule flags, with the flags."""
    received = list(batches)
    if not received:
        return
    rows = pl.DataFrame(pa.Table.from_batches(received))
    del received
    flags = row_flags(fill_nan(rows), rules)
    flagged = pl.concat([rows, flags], how="horizontal").filter(pl.any_horizontal(flags))
    yield from flagged.to_arrow().cast(schema).to_batches()


def _held_back(settings: Settings, batch: SparkBatch) -> pl.DataFrame:
    """``splits.held_back`` on the executors: the rows are partitioned by symbol (the rule
    compares a symbol's bars with each other and with its last bar in the lake, which each
    task reads), and only the keys found reach the driver."""
    rows = batch.frame.select(*StockRecord.names())
    tasks = shuffle_partitions(batch.rows, parallelism(rows.sparkSession))
    _, rules, _ = read_rules()
    schema = pa.schema([(name, pa.string()) for name in splits.FOUND_SCHEMA])
    held = partial(
        _held_task, settings=settings, rules=[r for r in rules if r.row_level], schema=schema
    )
    found = collect_arrow(rows.repartition(tasks, "symbol").mapInArrow(held, spark_struct(schema)))
    return pl.DataFrame(found).sort("symbol", "timestamp")


def _held_task(
    batches: Iterator[pa.RecordBatch], *, settings: Settings, rules: list[Rule], schema: pa.Schema
) -> Iterator[pa.RecordBatch]:
    """On an executor: the rows of this task's symbols the split rule holds back, judged on
    those no suite rule flags (as on the Polars path)."""
    received = list(batches)
    if not received:
        return
    rows = pl.DataFrame(pa.Table.from_batches(received))
    kept = rows.filter(~pl.any_horizontal(row_flags(fill_nan(rows), rules)))
    yield from splits.held_back(settings, kept).to_arrow().cast(schema).to_batches()
