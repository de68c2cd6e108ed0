"""The Spark engine against the Polars engine and the oracle: transform parity, idempotent
re-runs, skew chunks, and the spark-submit job (real local Spark, one shared session)."""

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

from bars import cleansed_frame, land, random_bars, unvalidated
from fdp import lake
from fdp.calendar import sessions
from fdp.config import Settings
from fdp.engines import Engine
from fdp.engines._polars import PolarsEngine
from fdp.indicators import INDICATOR_COLUMNS, STATE_ROWS
from fdp.records import CleansedRecord, EnrichedStockRecord, Frame
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
            for column in INDICATOR_COLUMNS:
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


def skewed() -> dict[str, list[Bar]]:
    rng = np.random.default_rng(9)

    def series(n: int) -> list[Bar]:
        close = 80 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
        return [
            Bar(
                None if rng.random() < 0.01 else float(c),
                float(c) * 1.01,
                float(c) * 0.99,
                int(rng.integers(0, 1000)),
                2.0 if rng.random() < 0.003 else 1.0,
            )
            for c in close
        ]

    return {"LONG": series(1500), "A": series(60), "B": series(20), "C": series(3)}


@pytest.mark.spark
def test_a_skewed_input_gives_the_same_rows_with_and_without_chunks(spark: Any) -> None:
    from fdp.engines._spark import SparkEngine

    symbols = skewed()
    bars = Frame(CleansedRecord, cleansed_frame(symbols, dt.date(1970, 1, 1)))
    empty = Frame.empty(EnrichedStockRecord)
    chunked = SparkEngine(spark, chunk_rows=100).enrich(bars, empty, processed_at=NOW).df
    whole = SparkEngine(spark, skew=False).enrich(bars, empty, processed_at=NOW).df
    assert_frame_equal(chunked, whole, check_exact=False, rel_tol=1e-9, abs_tol=1e-12)
    oracle_input = bars.df.select(
        "symbol", "trade_date", "close", "high", "low", "volume", "split_coefficient"
    )
    assert_matches_oracle(chunked, oracle_input)

    cut = 700  # continue LONG from state rows, chunked: the EMA crosses chunk borders
    long_rows = whole.filter(pl.col("symbol") == "LONG")
    state = Frame(EnrichedStockRecord, long_rows.slice(cut - STATE_ROWS, STATE_ROWS))
    no_split = bars.df.filter(pl.col("symbol") == "LONG").with_columns(split_coefficient=1.0)
    tail = Frame(CleansedRecord, no_split.slice(cut))
    part = SparkEngine(spark, chunk_rows=100).enrich(tail, state, processed_at=NOW).df
    full = (
        PolarsEngine()
        .enrich(Frame(CleansedRecord, no_split), empty, processed_at=NOW)
        .df.slice(cut)
    )
    assert_frame_equal(part, full, check_exact=False, rel_tol=1e-9, abs_tol=1e-12)


@pytest.mark.spark
def test_chunks_split_a_long_series_with_look_back_rows(spark: Any) -> None:
    from pyspark.sql import functions as sf

    from fdp.engines._spark import _CHUNK, _N, _POS, LOOKBACK, _with_chunks

    n, size = 1000, 300
    rows = spark.range(n).select(
        sf.lit("LONG").alias("symbol"), sf.col("id").alias(_POS), sf.lit(n).alias(_N)
    )
    groups = (
        _with_chunks(rows, size)
        .groupBy(_CHUNK)
        .agg(sf.min(_POS).alias("first"), sf.max(_POS).alias("last"), sf.count("*").alias("n"))
        .orderBy(_CHUNK)
        .collect()
    )
    assert [(g[_CHUNK], g["first"], g["last"], g["n"]) for g in groups] == [
        (0, 0, 299, 300),
        (1, 300 - LOOKBACK, 599, 300 + LOOKBACK),
        (2, 600 - LOOKBACK, 899, 300 + LOOKBACK),
        (3, 900 - LOOKBACK, 999, 100 + LOOKBACK),
    ]


def test_the_spark_schema_is_derived_from_the_records() -> None:
    from fdp.spark_session import spark_schema

    schema = spark_schema(EnrichedStockRecord)
    assert schema.fieldNames() == EnrichedStockRecord.names()
    types = {f.name: f.dataType.simpleString() for f in schema.fields}
    assert (types["trade_date"], types["processing_timestamp"]) == ("date", "timestamp")
    assert (types["volume"], types["year"], types["sma_50"]) == ("bigint", "int", "double")
    assert (schema["symbol"].nullable, schema["close"].nullable) == (False, True)


def job_arguments(tmp_path: Path) -> tuple[list[str], Path]:
    """The job's arguments over a source landed by ``land_all`` (admitted by an explicit
    override: these tests are about the job's mechanics), and its target."""
    source = Settings(data_dir=str(tmp_path / "source"))
    land_all(source)
    target = tmp_path / "target"
    paths = ["--source-path", source.data_dir, "--target-path", str(target)]
    return [*paths, "--override-gate", "test of the job's mechanics"], target


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
    assert [r.rejected for r in first if r.rows_in] == [0, 0, 1]
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
    staging = target / "curated" / spark_job.STAGING
    assert not staging.exists() or not any(staging.iterdir())

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
