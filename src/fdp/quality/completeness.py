"""The completeness rule: every exchange session present for every symbol of a batch.

GX has no such expectation, so fdp registers one (``expect_symbols_to_have_every_session``)
with a metric for the pandas and the Spark engine. Both reduce the batch to its distinct
(symbol, date) keys and call ``missing_sessions``, the one definition of the rule.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar, cast

import polars as pl
import pyarrow as pa
from great_expectations.core.metric_domain_types import MetricDomainTypes
from great_expectations.execution_engine.pandas_execution_engine import PandasExecutionEngine
from great_expectations.execution_engine.sparkdf_execution_engine import SparkDFExecutionEngine
from great_expectations.expectations.expectation import BatchExpectation
from great_expectations.expectations.metrics.metric_provider import metric_value
from great_expectations.expectations.metrics.table_metric_provider import TableMetricProvider

from fdp.calendar import session_array
from fdp.errors import ConfigError, DataError

METRIC = "table.fdp_missing_sessions"
SAMPLE = 1000
"""How many missing keys a result carries; the count is always exact."""


def missing_sessions(
    keys: pl.DataFrame, symbol: str = "symbol", date: str = "timestamp"
) -> pl.DataFrame:
    """The (symbol, timestamp) keys absent from ``keys``, oldest first per symbol.

    A symbol must have a bar on every session from its own first bar to the batch's last
    date: a later listing is not a gap, a symbol that stops early is. Unparseable dates are
    ignored here (the date rule reports them).
    """
    dated = keys.select(
        pl.col(symbol).cast(pl.String).alias("symbol"),
        pl.col(date).cast(pl.String).str.to_date("%Y-%m-%d", strict=False).alias("day"),
    ).drop_nulls()
    empty = pl.DataFrame(schema={"symbol": pl.String, "timestamp": pl.String})
    if dated.is_empty():
        return empty
    start, end = cast(dt.date, dated["day"].min()), cast(dt.date, dated["day"].max())
    try:
        sessions = pl.Series("day", session_array(start, end)).cast(pl.Date)
    except ConfigError as exc:
        raise DataError(f"bars dated {start} to {end}: {exc}") from None
    # Fast path: count each symbol's distinct sessions against the calendar's count.
    per_symbol = dated.group_by("symbol").agg(
        pl.col("day").min().alias("first"),
        pl.col("day").filter(pl.col("day").is_in(sessions.implode())).n_unique().alias("present"),
    )
    due = len(sessions) - sessions.search_sorted(per_symbol["first"], side="left")
    short = per_symbol.filter(pl.col("present") < due)
    if short.is_empty():
        return empty
    expected = short.join(sessions.to_frame(), how="cross").filter(pl.col("day") >= pl.col("first"))
    return (
        expected.join(dated.unique(), on=["symbol", "day"], how="anti")
        .sort("symbol", "day")
        .select("symbol", pl.col("day").dt.strftime("%Y-%m-%d").alias("timestamp"))
    )


def _summary(missing: pl.DataFrame) -> dict[str, Any]:
    return {"count": missing.height, "sample": [list(r) for r in missing.head(SAMPLE).rows()]}


class TableMissingSessions(TableMetricProvider):
    """Count and sample of the missing (symbol, date) keys of a batch."""

    metric_name = METRIC
    value_keys = ("symbol_column", "date_column")

    @metric_value(engine=PandasExecutionEngine)
    def _pandas(
        cls,  # noqa: N805  (GX binds these as class methods)
        execution_engine: PandasExecutionEngine,
        metric_domain_kwargs: dict[str, Any],
        metric_value_kwargs: dict[str, Any],
        metrics: dict[str, Any],
        runtime_configuration: dict[str, Any],
    ) -> dict[str, Any]:
        df, _, _ = execution_engine.get_compute_domain(
            domain_kwargs=metric_domain_kwargs, domain_type=MetricDomainTypes.TABLE
        )
        cols = [metric_value_kwargs["symbol_column"], metric_value_kwargs["date_column"]]
        keys = pl.DataFrame(pl.from_arrow(pa.Table.from_pandas(df[cols], preserve_index=False)))
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
        df, _, _ = execution_engine.get_compute_domain(
            domain_kwargs=metric_domain_kwargs, domain_type=MetricDomainTypes.TABLE
        )
        cols = [metric_value_kwargs["symbol_column"], metric_value_kwargs["date_column"]]
        keys = pl.DataFrame(pl.from_arrow(df.select(*cols).distinct().toArrow()))
        return _summary(missing_sessions(keys, *cols))


class ExpectSymbolsToHaveEverySession(BatchExpectation):
    """Expect each symbol to have a bar on every exchange session (see ``missing_sessions``)."""

    symbol_column: str = "symbol"
    date_column: str = "timestamp"

    metric_dependencies = (METRIC,)
    success_keys = ("symbol_column", "date_column")
    domain_keys: ClassVar[tuple[str, ...]] = ("row_condition", "condition_parser")
    args_keys = ("symbol_column", "date_column")

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
