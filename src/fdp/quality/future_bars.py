"""The future-bar rule: no bar is dated after the day its batch was ingested.

No vendor can have traded a session that has not happened yet: a bar dated 2999 would open a
``year=2999`` partition and become every "latest date" of the warehouse. GX has no expectation
comparing a date string with a date column, so fdp registers one
(``expect_bars_to_not_be_after_ingest_date``). It is row-level with a ``mostly``: its metric
counts the rows ``fdp.quality.suite.after_ingest`` flags, on the pandas and on the Spark
engine, and fdp's row mask is that same expression, so GX's count and the rows fdp rejects
agree by construction.
"""

from __future__ import annotations

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
from great_expectations.expectations.model_field_types import MostlyField

from fdp.quality.domain import pandas_columns, spark_frame
from fdp.quality.suite import after_ingest
from fdp.spark_session import spark_struct

METRIC = "table.fdp_bars_after_ingest"
_ROWS = "_rows"
_COUNTS = pa.schema([("count", pa.int64()), ("rows", pa.int64())])


def count_after_ingest(pairs: pl.DataFrame, date: str, ingest: str) -> dict[str, int]:
    """Rows of ``pairs`` dated after their ingest date, and all rows; ``pairs`` holds the
    two columns and ``_rows``, how many rows each (date, ingest date) pair stands for."""
    return dict(
        pairs.select(
            pl.col(_ROWS).filter(after_ingest(date, ingest)).sum().alias("count"),
            pl.col(_ROWS).sum().alias("rows"),
        ).row(0, named=True)
    )


class TableBarsAfterIngest(TableMetricProvider):
    """How many rows of a batch are dated after their ingest date, of how many."""

    metric_name = METRIC
    value_keys = ("date_column", "ingest_column")

    @metric_value(engine=PandasExecutionEngine)
    def _pandas(
        cls,  # noqa: N805  (GX binds these as class methods)
        execution_engine: PandasExecutionEngine,
        metric_domain_kwargs: dict[str, Any],
        metric_value_kwargs: dict[str, Any],
        metrics: dict[str, Any],
        runtime_configuration: dict[str, Any],
    ) -> dict[str, int]:
        cols = [metric_value_kwargs["date_column"], metric_value_kwargs["ingest_column"]]
        rows = pandas_columns(execution_engine, metric_domain_kwargs, cols)
        return count_after_ingest(rows.with_columns(pl.lit(1).alias(_ROWS)), *cols)

    @metric_value(engine=SparkDFExecutionEngine)
    def _spark(
        cls,  # noqa: N805  (GX binds these as class methods)
        execution_engine: SparkDFExecutionEngine,
        metric_domain_kwargs: dict[str, Any],
        metric_value_kwargs: dict[str, Any],
        metrics: dict[str, Any],
        runtime_configuration: dict[str, Any],
    ) -> dict[str, int]:
        cols = [metric_value_kwargs["date_column"], metric_value_kwargs["ingest_column"]]
        # Each task counts its rows; only one pair of counts per task reaches the driver.
        df = spark_frame(execution_engine, metric_domain_kwargs).select(*cols)
        found = df.mapInArrow(partial(_count_task, cols=cols), spark_struct(_COUNTS)).collect()
        return {k: sum(int(r[k]) for r in found) for k in ("count", "rows")}


def _count_task(batches: Iterator[pa.RecordBatch], *, cols: list[str]) -> Iterator[pa.RecordBatch]:
    total = dict.fromkeys(_COUNTS.names, 0)
    for batch in batches:
        rows = pl.DataFrame(pa.Table.from_batches([batch]))
        found = count_after_ingest(rows.with_columns(pl.lit(1).alias(_ROWS)), *cols)
        total = {k: total[k] + found[k] for k in total}
    yield pa.RecordBatch.from_pylist([total], _COUNTS)


class ExpectBarsToNotBeAfterIngestDate(BatchExpectation):
    """Expect no bar dated after its ingest date (see ``fdp.quality.suite.after_ingest``),
    allowing a ``mostly`` share of rows to pass the gate and be rejected one by one."""

    date_column: str = "timestamp"
    ingest_column: str = "ingest_date"
    mostly: MostlyField = 1.0

    metric_dependencies = (METRIC,)
    success_keys = ("date_column", "ingest_column", "mostly")
    domain_keys: ClassVar[tuple[str, ...]] = ("row_condition", "condition_parser")
    args_keys = ("date_column", "ingest_column")

    def _validate(
        self,
        metrics: dict[str, Any],
        runtime_configuration: dict[str, Any] | None = None,
        execution_engine: Any = None,
    ) -> dict[str, Any]:
        found = metrics[METRIC]
        count, rows = found["count"], found["rows"]
        mostly = cast(float, self.mostly)  # a suite parameter is resolved by now
        return {
            "success": rows == 0 or (rows - count) / rows >= mostly,
            "result": {
                "observed_value": count,
                "element_count": rows,
                "unexpected_count": count,
                "unexpected_percent": 100.0 * count / rows if rows else None,
            },
        }
