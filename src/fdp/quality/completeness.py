"""The completeness rule: every exchange session present for every symbol of a batch.

GX has no such expectation, so fdp registers one (``expect_symbols_to_have_every_session``)
with a metric for the pandas and the Spark engine. Both run the same Polars code: pandas' on
the whole batch (``missing_sessions``), Spark's on its executors, one group of whole symbols
per task, due up to the batch's last date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from functools import partial
from typing import Any, ClassVar, cast

import polars as pl
import pyarrow as pa
from great_expectations.execution_engine.pandas_execution_engine import PandasExecutionEngine
from great_expectations.execution_engine.sparkdf_execution_engine import SparkDFExecutionEngine
from great_expectations.expectations.expectation import BatchExpectation
from great_expectations.expectations.metrics.metric_provider import metric_value
from great_expectations.expectations.metrics.table_metric_provider import TableMetricProvider

from fdp.calendar import coverage, session_array
from fdp.quality.domain import pandas_columns, spark_frame
from fdp.quality.suite import after_ingest, bar_date
from fdp.spark_session import spark_struct

METRIC = "table.fdp_missing_sessions"
SAMPLE = 1000
"""How many missing keys a result carries; the count is always exact."""


def missing_sessions(
    keys: pl.DataFrame,
    symbol: str = "symbol",
    date: str = "timestamp",
    ingest: str | None = None,
) -> pl.DataFrame:
    """The (symbol, timestamp) keys absent from ``keys``, oldest first per symbol, then the
    keys the exchange calendar cannot judge.

    A symbol must have a bar on every session from its own first bar to the batch's last
    date: a later listing is not a gap, a symbol that stops early is. Unparseable dates are
    ignored here (the date rule reports them), and so are bars dated after their ingest date
    (column ``ingest``, when given: ``not_after_ingest`` reports them). A bar outside the
    calendar's coverage cannot be vouched for: its key is returned as failing.
    """
    dated, uncovered = _dated(keys, symbol, date, ingest)
    missing = _missing(dated, _last(dated))
    return pl.concat([_keys(missing), _keys(uncovered)])


def _dated(
    keys: pl.DataFrame, symbol: str, date: str, ingest: str | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The (symbol, day) of ``keys`` the rule judges, and those outside the calendar's
    coverage (distinct, sorted)."""
    future = after_ingest(date, ingest) if ingest is not None else pl.lit(False)
    dated = (
        keys.filter(~future)
        .select(pl.col(symbol).cast(pl.String).alias("symbol"), bar_date(date).alias("day"))
        .drop_nulls()
    )
    first, last = coverage()
    covered = pl.col("day").is_between(first, last)
    uncovered = dated.filter(~covered).unique().sort("symbol", "day")
    return dated.filter(covered), uncovered


def _last(dated: pl.DataFrame) -> dt.date | None:
    """The batch's last date: every symbol is due up to it."""
    return cast(dt.date | None, dated["day"].max())


def _missing(dated: pl.DataFrame, last: dt.date | None) -> pl.DataFrame:
    """The (symbol, day) sessions absent from ``dated`` (whole symbols), from each symbol's
    first bar to ``last``, sorted."""
    if dated.is_empty() or last is None:
        return dated.clear()
    start = cast(dt.date, dated["day"].min())
    sessions = pl.Series("day", session_array(start, last)).cast(pl.Date)
    # Fast path: count each symbol's distinct sessions against the calendar's count.
    per_symbol = dated.group_by("symbol").agg(
        pl.col("day").min().alias("first"),
        pl.col("day").filter(pl.col("day").is_in(sessions.implode())).n_unique().alias("present"),
    )
    due = len(sessions) - sessions.search_sorted(per_symbol["first"], side="left")
    short = per_symbol.filter(pl.col("present") < due)
    if short.is_empty():
        return dated.clear()
    expected = short.join(sessions.to_frame(), how="cross").filter(pl.col("day") >= pl.col("first"))
    return (
        expected.join(dated.unique(), on=["symbol", "day"], how="anti")
        .sort("symbol", "day")
        .select("symbol", "day")
    )


def _keys(days: pl.DataFrame) -> pl.DataFrame:
    """(symbol, day) as the rule reports them: (symbol, timestamp)."""
    return days.select("symbol", pl.col("day").dt.strftime("%Y-%m-%d").alias("timestamp"))


def _columns(kwargs: dict[str, Any]) -> list[str]:
    """The symbol, date and (when set) ingest date columns the rule reads."""
    names = [kwargs["symbol_column"], kwargs["date_column"], kwargs.get("ingest_column")]
    return [n for n in names if n is not None]


def _summary(missing: pl.DataFrame) -> dict[str, Any]:
    return {"count": missing.height, "sample": [list(r) for r in missing.head(SAMPLE).rows()]}


class TableMissingSessions(TableMetricProvider):
    """Count and sample of the missing (symbol, date) keys of a batch."""

    metric_name = METRIC
    value_keys = ("symbol_column", "date_column", "ingest_column")

    @metric_value(engine=PandasExecutionEngine)
    def _pandas(
        cls,  # noqa: N805  (GX binds these as class methods)
        execution_engine: PandasExecutionEngine,
        metric_domain_kwargs: dict[str, Any],
        metric_value_kwargs: dict[str, Any],
        metrics: dict[str, Any],
        runtime_configuration: dict[str, Any],
    ) -> dict[str, Any]:
        cols = _columns(metric_value_kwargs)
        keys = pandas_columns(execution_engine, metric_domain_kwargs, cols)
        return _summary(missing_sessions(keys, *cols))

    @metric_value(engine=SparkDFExecutionEngine)
    def _spark(
        cls,  # noqa: N805  (GX binds these as class methods)
        execution_engine: SparkDFExecutionEngine,
        metric_domain_kwargs: dict[str, Any],
        metric_value_kwargs: dict[str, Any],
        metrics: dict[str, Any],
        runtime_configuration: dict[str, Any],
    ) -> dict[str, Any]:
        # On the executors: the batch's last date (one row per task), then each symbol's
        # keys in one task (a shuffle of three columns); only the count and the sample of
        # the missing keys reach the driver.
        cols = _columns(metric_value_kwargs)
        keys = spark_frame(execution_engine, metric_domain_kwargs).select(*cols)
        ends = keys.mapInArrow(partial(_last_task, cols=cols), "last date").collect()
        last = max((r["last"] for r in ends if r["last"] is not None), default=None)
        task = partial(_missing_task, cols=cols, last=last)
        found = keys.repartition(cols[0]).mapInArrow(task, spark_struct(_FOUND)).persist()
        try:
            count = found.count()
            sample = found.orderBy(_KIND, "symbol", _DAY).limit(SAMPLE).collect()
        finally:
            found.unpersist()
        return {"count": count, "sample": [[r["symbol"], r["timestamp"]] for r in sample]}


_KIND, _DAY = "_kind", "_day"
_FOUND = pa.schema(
    [
        pa.field(_KIND, pa.int32()),
        pa.field("symbol", pa.string()),
        pa.field("timestamp", pa.string()),
        pa.field(_DAY, pa.int32()),
    ]
)
"""A task's failing keys: ``_kind`` 0 missing, 1 outside the calendar (``missing_sessions``'
order), ``_day`` the date as days since 1970 (any date Polars parses)."""


def _last_task(batches: Iterator[pa.RecordBatch], *, cols: list[str]) -> Iterator[pa.RecordBatch]:
    received = list(batches)
    if received:
        dated, _ = _dated(pl.DataFrame(pa.Table.from_batches(received)), *cols)
        last = _last(dated)
        yield pa.RecordBatch.from_pydict({"last": pa.array([last], pa.date32())})


def _missing_task(
    batches: Iterator[pa.RecordBatch], *, cols: list[str], last: dt.date | None
) -> Iterator[pa.RecordBatch]:
    received = list(batches)
    if not received:
        return
    dated, uncovered = _dated(pl.DataFrame(pa.Table.from_batches(received)), *cols)
    for kind, days in enumerate((_missing(dated, last), uncovered)):
        found = _keys(days).with_columns(
            pl.lit(kind, pl.Int32).alias(_KIND), days["day"].cast(pl.Int32).alias(_DAY)
        )
        yield from found.select(_FOUND.names).to_arrow().cast(_FOUND).to_batches()


class ExpectSymbolsToHaveEverySession(BatchExpectation):
    """Expect each symbol to have a bar on every exchange session (see ``missing_sessions``)."""

    symbol_column: str = "symbol"
    date_column: str = "timestamp"
    ingest_column: str | None = None

    metric_dependencies = (METRIC,)
    success_keys = ("symbol_column", "date_column", "ingest_column")
    domain_keys: ClassVar[tuple[str, ...]] = ("row_condition", "condition_parser")
    args_keys = ("symbol_column", "date_column", "ingest_column")

    def _validate(
        self,
        metrics: dict[str, Any],
        runtime_configuration: dict[str, Any] | None = None,
        execution_engine: Any = None,
    ) -> dict[str, Any]:
        found = metrics[METRIC]
        return {
            "success": found["count"] == 0,
            "result": {
                "observed_value": found["count"],
                "unexpected_count": found["count"],
                "missing_keys": found["sample"],
            },
        }
