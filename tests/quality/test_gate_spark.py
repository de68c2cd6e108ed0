"""The Spark path: GX validating a Spark DataFrame agrees with the embedded engine."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from quality_bars import INGEST, clean_frame, set_value

from fdp.quality import validate_batch
from fdp.records import Frame, StockRecord


@pytest.mark.spark
def test_spark_engine_agrees_with_polars(spark: Any) -> None:
    df = set_value(clean_frame(), [3], volume=-1, open=1.0)
    df = df.filter(pl.int_range(pl.len()) != 20)
    batch = Frame(StockRecord, df)
    on_spark = validate_batch(
        batch, source="simulator", ingest_date=INGEST, engine="spark", spark=spark
    )
    embedded = validate_batch(batch, source="simulator", ingest_date=INGEST)

    def outcome(report: Any) -> list[tuple[str, bool, int | None, tuple[tuple[str, str], ...]]]:
        return [
            (r.rule, r.success, r.unexpected_count, r.failing_keys) for r in report.expectations
        ]

    assert outcome(on_spark.report) == outcome(embedded.report)
    assert {r.rule for r in on_spark.report.failures} == {"open_ge_low", "sessions_complete"}
    assert on_spark.rejected.equals(embedded.rejected)
