"""The completeness rule: every exchange session present for every symbol of a batch.

GX has no such expectation, so fdp registers one (``expect_symbols_to_have_every_session``)
with a metric for the pandas and the Spark engine. Both reduce the batch to its distinct
(symbol, date, ingest date) keys and call ``missing_sessions``, the one definition of the rule.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar, cast

import polars as pl
from great_expectations.execution_engine.pandas_execution_engine import PandasExecutionEngine
from great_expectations.execution_engine.sparkdf_execution_engine import SparkDFExecutionEngine
from great_expectations.expectations.expectation import BatchExpectation
from great_expectations.expectations.metrics.metric_provider import metric_value
from great_expectations.expectations.metrics.table_metric_provider import TableMetricProvider

from fdp.calendar import coverage, session_array
from fdp.quality.domain import pandas_columns, spark_frame
from fdp.quality.suite import after_ingest, bar_date

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
    future = after_ingest(date, ingest) if ingest is not None else pl.lit(False)
    dated = (
        keys.filter(~future)
        .select(pl.col(symbol).cast(pl.String).alias("symbol"), bar_date(date).alias("day"))
        .drop_nulls()
    )
    first, last = coverage()
    covered = pl.col("day").is_between(first, last)
    uncovered = (
        dated.filter(~covered)
        .unique()
        .sort("symbol", "day")
        .select("symbol", pl.col("day").dt.strftime("%Y-%m-%d").alias("timestamp"))
    )
    dated = dated.filter(covered)
    if dated.is_empty():
        return uncovered
    start, end = cast(dt.date, dated["day"].min()), cast(dt.date, dated["day"].max())
    sessions = pl.Series("day", session_array(start, end)).cast(pl.Date)
    # Fast path: count each symbol's distinct sessions against the calendar's count.
    per_symbol = dated.group_by("symbol").agg(
        pl.col("day").min().alias("first"),
        pl.col("day").filter(pl.col("day").is_in(sessions.implode())).n_unique().alias("present"),
    )
    due = len(sessions) - sessions.search_sorted(per_symbol["first"], side="left")
    short = per_symbol.filter(pl.col("present") < due)
    if short.is_empty():
        return uncovered
    expected = short.join(sessions.to_frame(), how="cross").filter(pl.col("day") >= pl.col("first"))
    missing = (
        expected.join(dated.unique(), on=["symbol", "day"], how="anti")
        .sort("symbol", "day")
        .select("symbol", pl.col("day").dt.strftime("%Y-%m-%d").alias("timestamp"))
    )
    return pl.concat([missing, uncovered])


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
        cols = _columns(metric_value_kwargs)
        df = spark_frame(execution_engine, metric_domain_kwargs)
        keys = pl.DataFrame(pl.from_arrow(df.select(*cols).distinct().toArrow()))
        return _summary(missing_sessions(keys, *cols))


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
