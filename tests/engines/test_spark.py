"""Every engine against the embedded one and the oracle: transform parity, the lake's file
format, idempotent re-runs, and the spark-submit job (real local Spark, one shared session)."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from bars import land, random_bars, unvalidated
from fdp import lake
from fdp.calendar import sessions
from fdp.config import Settings
from fdp.engines import Engine
from fdp.engines._polars import PolarsEngine
from fdp.indicators import computed_columns
from fdp.records import EnrichedStockRecord
from fdp.rejected import read_rejected
from fdp.transform import TransformResult, transform
from indicator_oracle import Bar, indicators

NOW = dt.datetime(2024, 3, 1, 18, tzinfo=dt.UTC)
DAYS = sessions(dt.date(2022, 1, 1), dt.date(2023, 12, 31))
HISTORY, DAILY = DAYS[:-2], DAYS[-2:]
LATE = DAYS[-40]


def raw_bars() -> pl.DataFrame:
    """~2,000 bars: random walks with splits, gaps, null and zero closes, short series."""
    bars = random_bars(["AAA", "BB.B", "CCC", "DDD"], DAYS, seed=11)
    rng = np.random.default_rng(5)
    gaps = pl.Series(rng.random(bars.height) < 0.1)
    bars = bars.filter(~((pl.col("symbol") == "DDD") & gaps))
    row = pl.int_range(pl.len()).over("symbol")
    bars = bars.with_columns(
        close=pl.when((pl.col("symbol") == "AAA") & row.is_in([30, 31, 200]))
        .then(None)
        .when((pl.col("symbol") == "BB.B") & (row == 77))
        .then(0.0)
        .otherwise(pl.col("close")),
        split_coefficient=pl.when((pl.col("symbol") == "CCC") & row.is_in([100, 480]))
        .then(3.0)
        .otherwise(pl.col("split_coefficient")),
    )
    short = random_bars(["SHRT"], DAYS[-3:], seed=1)
    mid = random_bars(["MID"], DAYS[-30:], seed=2)
    prices = ["open", "high", "low", "close", "adjusted_close"]
    return (  # the vendor's JSON carries 4 decimals
        pl.concat([bars, short, mid])
        .with_columns(pl.col(prices).round(4))
        .sort("symbol", "trade_date")
    )


BARS = raw_bars()
CORRECTION = BARS.filter((pl.col("symbol") == "AAA") & (pl.col("trade_date") == LATE)).with_columns(
    close=pl.col("close") * 1.1
)
BAD = BARS.filter((pl.col("symbol") == "BB.B") & (pl.col("trade_date") == DAYS[-1])).with_columns(
    close=pl.lit(-1.0)
)


def land_all(settings: Settings) -> None:
    """History in one batch, then one batch per day; the last also corrects a past bar and
    re-sends a bar with a negative close (rejected: the earlier ingest stays)."""
    land(settings, HISTORY[-1], BARS.filter(pl.col("trade_date").is_in(HISTORY)))
    for day in DAILY[:-1]:
        land(settings, day, BARS.filter(pl.col("trade_date") == day), fmt="json")
    last = BARS.filter(pl.col("trade_date") == DAILY[-1])
    land(settings, DAILY[-1], pl.concat([last, CORRECTION, BAD]))


def run_all(settings: Settings, engine: Engine) -> list[TransformResult]:
    land_all(settings)
    return [
        transform(settings, day, gate=unvalidated(settings, day), engine=engine, now=NOW)
        for day in [HISTORY[-1], *DAILY]
    ]


def curated(settings: Settings) -> pl.DataFrame:
    return lake.scan(settings).collect().sort("symbol", "trade_date")


def digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def assert_close(actual: float | None, expected: float | None, where: str) -> None:
    if actual is None or expected is None:
        assert (actual, expected) == (None, None), f"{where}: {actual} != {expected}"
        return
    assert math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-9), f"{where}: {actual}"


def assert_matches_oracle(out: pl.DataFrame, bars: pl.DataFrame) -> None:
    """Every indicator of ``out`` equals the oracle computed from the final input ``bars``."""
    for (symbol,), rows in bars.sort("trade_date").group_by("symbol"):
        got = out.filter(pl.col("symbol") == symbol).sort("trade_date").to_dicts()
        series = [
            Bar(r["close"], r["high"], r["low"], r["volume"] or 0, r["split_coefficient"] or 1.0)
            for r in rows.iter_rows(named=True)
        ]
        assert len(got) == len(series), symbol
        for t, (row, want) in enumerate(zip(got, indicators(series), strict=True)):
            for column in computed_columns():
                assert_close(row[column], want[column], f"{symbol} row {t + 1} {column}")


@pytest.fixture(scope="module")
def polars_lake(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = Settings(data_dir=str(tmp_path_factory.mktemp("polars") / "data"))
    run_all(settings, PolarsEngine())
    return settings


@pytest.fixture(scope="module")
def engine_lake(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = Settings(data_dir=str(tmp_path_factory.mktemp(engine.name) / "data"))
    run_all(settings, engine)
    return settings


def test_day_by_day_runs_give_the_oracle_and_the_polars_rows(
    engine_lake: Settings, polars_lake: Settings
) -> None:
    rows = curated(engine_lake)
    final = BARS.update(CORRECTION, on=["symbol", "trade_date"])
    assert rows.height == final.height == BARS.height
    assert_matches_oracle(rows, final)
    assert_frame_equal(rows, curated(polars_lake), check_exact=False, rel_tol=1e-9, abs_tol=1e-12)
    rejected = read_rejected(engine_lake, DAILY[-1], "cleanse")
    assert rejected.select("symbol", "rule").rows() == [("BB.B", "negative_close")]
    assert "-1.0 < 0" in rejected["reason"][0]


def test_rerunning_a_date_changes_nothing(engine: Engine, engine_lake: Settings) -> None:
    root = Path(engine_lake.data_dir)
    before = digests(root)
    again = transform(
        engine_lake,
        DAILY[-1],
        gate=unvalidated(engine_lake, DAILY[-1]),
        engine=engine,
        now=NOW + dt.timedelta(days=1),
    )
    assert digests(root) == before
    assert (again.rows_written, again.partitions_replaced) == (0, 0)


def file_layout(path: Path) -> dict[str, Any]:
    """What defines a lake file's format: schema, row groups, codec, encodings, statistics."""
    meta = pq.ParquetFile(path).metadata
    columns = [meta.row_group(0).column(i) for i in range(meta.num_columns)]
    return {
        "schema": pq.read_schema(path),
        "row_groups": [meta.row_group(i).num_rows for i in range(meta.num_row_groups)],
        "codecs": {c.path_in_schema: c.compression for c in columns},
        "encodings": {c.path_in_schema: sorted(c.encodings) for c in columns},
        "statistics": all(c.is_stats_set for c in columns),
    }


def test_every_engine_writes_files_in_the_lake_format(
    engine_lake: Settings, polars_lake: Settings
) -> None:
    """The engine's partition files are the embedded engine's: same schema (no year/month
    inside), codec, dictionary on symbol only, statistics, row groups, sort order."""
    assert lake.partitions(engine_lake) == lake.partitions(polars_lake)
    for partition in lake.partitions(engine_lake):
        ours = Path(lake.partition_url(engine_lake, partition))
        theirs = Path(lake.partition_url(polars_lake, partition))
        assert file_layout(ours) == file_layout(theirs), partition
        rows = pl.read_parquet(ours)
        assert rows.equals(rows.sort("symbol", "trade_date"))
        assert not {"year", "month"} & set(rows.columns)
    assert not Path(engine_lake.path(lake.CURATED, lake.STAGING)).exists()


def test_the_spark_schema_is_derived_from_the_records() -> None:
    from fdp.spark_session import spark_schema

    schema = spark_schema(EnrichedStockRecord)
    assert schema.fieldNames() == EnrichedStockRecord.names()
    types = {f.name: f.dataType.simpleString() for f in schema.fields}
    assert (types["trade_date"], types["processing_timestamp"]) == ("date", "timestamp")
    assert (types["volume"], types["year"], types["sma_50"]) == ("bigint", "int", "double")
    assert (schema["symbol"].nullable, schema["close"].nullable) == (False, True)


def job_arguments(tmp_path: Path) -> tuple[list[str], Path]:
    """The job's arguments over a data dir landed by ``land_all`` (admitted by an explicit
    override: these tests are about the job's mechanics), and that data dir."""
    target = tmp_path / "data"
    land_all(Settings(data_dir=str(target)))
    return ["--data-dir", str(target), "--override-gate", "test of the job's mechanics"], target


@pytest.mark.spark
def test_the_spark_job_refuses_a_batch_without_a_passing_validation(
    spark: Any, tmp_path: Path
) -> None:
    from fdp.engines import spark_job
    from fdp.quality import GateRefusedError

    args, target = job_arguments(tmp_path)
    without_override = args[: args.index("--override-gate")]
    with pytest.raises(GateRefusedError, match="no validation"):
        spark_job.main([*without_override, "--date", str(HISTORY[-1])], spark)
    assert not (target / "curated" / "stock_prices").exists()


@pytest.mark.spark
def test_the_spark_job_writes_the_lake_the_transform_writes(
    spark: Any, polars_lake: Settings, tmp_path: Path
) -> None:
    from fdp.engines import spark_job

    args, target = job_arguments(tmp_path)
    first = spark_job.main([*args, "--start", str(HISTORY[-1]), "--end", str(DAILY[-1])], spark)
    assert [r.rejected for r in first] == [0, 0, 1]
    settings = Settings(data_dir=str(target))
    rows, reference = curated(settings), curated(polars_lake)
    assert_frame_equal(
        rows.drop("processing_timestamp"),
        reference.drop("processing_timestamp"),
        check_exact=False,
        rel_tol=1e-9,
        abs_tol=1e-12,
    )
    table = target / "curated" / "stock_prices"
    files = sorted(table.rglob("*.parquet"))
    assert [p.name for p in files] == ["part-0.parquet"] * len(lake.partitions(settings))
    meta = pq.ParquetFile(files[0]).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"
    first_file = pl.read_parquet(files[0])
    assert first_file.equals(first_file.sort("symbol", "trade_date"))
    assert "year" not in first_file.columns
    assert not (target / "curated" / lake.STAGING).exists()

    before = digests(table)
    (again,) = spark_job.main([*args, "--date", str(DAILY[-1])], spark)
    assert (again.rows_written, again.partitions_replaced) == (0, 0)
    assert digests(table) == before


@pytest.mark.spark
def test_the_spark_job_in_any_date_order_keeps_the_latest_ingest(
    spark: Any, polars_lake: Settings, tmp_path: Path
) -> None:
    """The correcting batch first, then the older batches it supersedes: the same lake."""
    from fdp.engines import spark_job

    args, target = job_arguments(tmp_path)
    for day in [DAILY[-1], HISTORY[-1], DAILY[0]]:
        spark_job.main([*args, "--date", str(day)], spark)
    superseded = read_rejected(Settings(data_dir=str(target)), HISTORY[-1], "cleanse")
    assert superseded.select("symbol", "timestamp", "rule").rows() == [
        ("AAA", LATE.isoformat(), "superseded")
    ]
    assert_frame_equal(
        curated(Settings(data_dir=str(target))).drop("processing_timestamp"),
        curated(polars_lake).drop("processing_timestamp"),
        check_exact=False,
        rel_tol=1e-9,
        abs_tol=1e-12,
    )
