"""The gate on Spark: a landed raw batch validated on the executors through the pipeline's
entry point gives the Polars engine's report, rejected rows, ``dq_results`` and fingerprint."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Iterator
from typing import Any

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from quality_bars import INGEST, clean_frame, set_value

from fdp import pipeline
from fdp.config import Settings
from fdp.quality import QualityGateError
from fdp.quality.report import load_report
from fdp.records import Frame, StockRecord
from fdp.rejected import read_rejected
from fdp.sources.landing import RawZone
from fdp.sources.vendor_json import encode_daily_adjusted

SOURCE = "simulator"
END = dt.date(2024, 3, 28)


def _land(settings: Settings) -> int:
    """A batch of two JSON objects and four Parquet parts, broken across objects: a key in
    two parts (found only if its rows meet in one task), failures in objects read by
    different tasks and out of symbol order (the order of a Polars read must come back), a
    session missing, a future bar, NaN and infinity. Returns its row count."""
    zone = RawZone(settings)
    rows = 0
    for k, symbol in enumerate(("MMM", "JJJ")):
        bars = clean_frame((symbol,), end=END)
        bars = set_value(bars, [5 + k], low=bars["open"][5 + k] + 1.0)  # open below low
        payload = encode_daily_adjusted(
            symbol,
            bars.with_columns(trade_date=pl.col("timestamp").str.to_date()),
            last_refreshed=END,
        )
        zone.land(SOURCE, INGEST, symbol, payload, rows=bars.height)
        rows += bars.height
    parts = [
        clean_frame(("ZZZ", "YYY"), end=END),
        clean_frame(("BBB", "AAA"), end=END),
        clean_frame(("CCC",), end=END),
        clean_frame(("CCC",), end=dt.date(2024, 1, 2)),  # CCC's first bar again
    ]
    parts[0] = set_value(parts[0], [4, 60], open=math.nan, close=math.inf)
    parts[0] = parts[0].filter(pl.int_range(pl.len()) != 30)  # a missing session
    parts[1] = set_value(parts[1], [2], high=1.0)  # high below low and open
    parts[1] = set_value(parts[1], [3], timestamp="2999-01-01")  # a future bar
    later = pl.int_range(pl.len()) >= 20  # an unreported 2:1 split of SSS on its 21st bar
    parts.append(
        clean_frame(("SSS",), end=END).with_columns(
            *(
                pl.when(later).then(pl.col(c) / 2).otherwise(c).alias(c)
                for c in ("open", "high", "low", "close", "adjusted_close")
            ),
            pl.when(later).then(pl.col("volume") * 2).otherwise("volume").alias("volume"),
        )
    )
    for i, part in enumerate(parts):
        path = f"{zone.batch_dir(SOURCE, INGEST)}/part-{i:05d}.parquet"
        bars = part.with_columns(source_file=pl.lit(zone.uri(path)))
        zone.land_parquet(SOURCE, INGEST, Frame(StockRecord, bars).to_arrow(), i)
        rows += bars.height
    return rows


def _never(*args: object) -> None:
    raise AssertionError("the Spark engine read the raw batch on the driver")


@pytest.fixture
def small_arrow_batches(spark: Any) -> Iterator[None]:
    """Arrow batches of 7 rows: an object's rows span batches, a batch holds several objects."""
    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    before = spark.conf.get(key)
    spark.conf.set(key, "7")
    yield
    spark.conf.set(key, before)


def _outcome(settings: Settings, engine: str) -> tuple[Any, pl.DataFrame, list[tuple[Any, ...]]]:
    with pytest.raises(QualityGateError):
        pipeline.validate(settings, INGEST, source=SOURCE, engine=engine)
    report = load_report(settings, SOURCE, INGEST)
    assert report is not None
    path = settings.warehouse_url.removeprefix("duckdb://")
    with duckdb.connect(path, read_only=True) as con:
        dq = con.execute(
            "SELECT * EXCLUDE (recorded_at) FROM dq_results ORDER BY expectation"
        ).fetchall()
    return report, read_rejected(settings, INGEST, "quality", source=SOURCE), dq


@pytest.mark.spark
@pytest.mark.usefixtures("small_arrow_batches")
def test_spark_validates_a_landed_batch_as_polars_does(
    spark: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = _land(settings)
    on_polars, polars_rejected, polars_dq = _outcome(settings, "polars")
    with monkeypatch.context() as patched:
        # The driver never reads the batch: the executors do.
        patched.setattr(RawZone, "read", _never)
        on_spark, spark_rejected, spark_dq = _outcome(settings, "spark")

    assert on_spark.engine == "spark"
    assert on_spark.row_count == on_polars.row_count == rows
    assert (
        on_spark.fingerprint
        == on_polars.fingerprint
        == RawZone(settings).fingerprint(SOURCE, INGEST)
    )
    same = ("engine", "validated_at", "json_url", "html_url")
    assert dataclasses.replace(on_spark, **dict.fromkeys(same)) == dataclasses.replace(
        on_polars, **dict.fromkeys(same)
    )
    assert spark_dq == polars_dq
    assert_frame_equal(spark_rejected, polars_rejected)

    results = {r.rule: r for r in on_spark.expectations}
    assert {r.rule for r in on_spark.failures} >= {"sessions_complete", "key_unique"}
    assert results["key_unique"].unexpected_count == 2
    days = clean_frame(("ZZZ",), end=END)["timestamp"]
    # The session ZZZ lacks, and the one BBB's future bar took the place of.
    assert results["sessions_complete"].failing_keys == (("BBB", days[3]), ("ZZZ", days[30]))
    # Batch order, not symbol order: the JSON objects (by name), then the parts.
    assert [k[0] for k in results["open_ge_low"].failing_keys] == ["JJJ", "MMM"]
    # Judged on the executors, each symbol's bars in one task; the batch is held back whole.
    assert results["suspected_split"].failing_keys == (("SSS", days[20]),)
    assert spark_rejected["symbol"].unique(maintain_order=True).to_list() == [
        "JJJ",
        "MMM",
        "ZZZ",
        "BBB",
        "CCC",
    ]
