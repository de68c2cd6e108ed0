"""The curated schema grows without rebuilds: a lake written before an indicator existed is read,
kept up to date and upgraded in place; a user-declared indicator is added and backfilled."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from bars import land, random_bars, unvalidated
from fdp import indicators, lake, pipeline
from fdp.calendar import sessions
from fdp.config import Settings
from fdp.errors import ConfigError, DataError
from fdp.transform import transform

DAYS = sessions(dt.date(2023, 1, 1), dt.date(2023, 6, 30))
HISTORY, DAILY = DAYS[:-3], DAYS[-3:]
SYMBOLS = ["AAA", "BBB"]
BARS = random_bars(SYMBOLS, DAYS, seed=11)
NEW = list(indicators.BUILTINS[10:])
"""The built-ins the seed's lake predates (RSI, MACD, Bollinger, ATR and their state)."""


def build(settings: Settings, days: list[dt.date]) -> None:
    """Run ``days`` in order; a first run into an empty lake lands the history before it too."""
    for day in days:
        first = not lake.partitions(settings)
        land(
            settings,
            day,
            BARS.filter((pl.col("trade_date") <= day) if first else (pl.col("trade_date") == day)),
        )
        transform(settings, day, gate=unvalidated(settings, day))


def curated(settings: Settings) -> pl.DataFrame:
    return lake.scan(settings).collect().sort(lake.KEY).drop("processing_timestamp")


def make_legacy(settings: Settings) -> None:
    """Rewrite the lake as fdp wrote it before the registry: no new columns, no _schema.json."""
    for path in Path(settings.data_dir, "curated", "stock_prices").rglob("*.parquet"):
        table = pq.read_table(path)
        pq.write_table(table.drop_columns(NEW), path)
    Path(settings.data_dir, "curated", lake.SCHEMA).unlink()


def digests(settings: Settings) -> dict[str, str]:
    root = Path(settings.data_dir, "curated", "stock_prices")
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*.parquet")
    }


def test_a_legacy_lake_is_read_kept_and_upgraded_in_place(tmp_path: Path) -> None:
    reference = Settings(data_dir=str(tmp_path / "reference"))
    build(reference, [HISTORY[-1], *DAILY])
    assert lake.maintained(reference) == indicators.columns()

    old = Settings(data_dir=str(tmp_path / "old"))
    build(old, [HISTORY[-1]])
    make_legacy(old)
    before = digests(old)
    assert lake.maintained(old) == indicators.BUILTINS[:10]

    # Daily runs on the legacy lake: no crash, the seed's indicators exact, the new ones null
    # (pending), and the months the runs do not touch are not rewritten.
    build(old, DAILY)
    recorded = json.loads(Path(old.data_dir, "curated", lake.SCHEMA).read_text())
    assert recorded == {
        "version": lake.SCHEMA_VERSION,
        "indicators": list(indicators.BUILTINS[:10]),
    }
    untouched = {k: v for k, v in before.items() if "month=06" not in k}
    assert {k: digests(old)[k] for k in untouched} == untouched
    rows = curated(old)
    assert rows.filter(pl.col("trade_date").is_in(DAILY))["rsi_14"].null_count() == 2 * len(DAILY)
    seed_columns = ["symbol", "trade_date", *indicators.BUILTINS[:10]]
    assert_frame_equal(
        rows.select(seed_columns), curated(reference).select(seed_columns), rel_tol=1e-9
    )

    # The new indicators backfilled: the lake equals one built with them, and is maintained.
    results = pipeline.backfill_indicators(
        old, ["rsi_14", "macd_hist", "bb_upper_20", "bb_lower_20", "atr_14"]
    )
    assert [r.stage for r in results] == ["transform", "load", "reconcile"]
    assert results[0].details["maintained"]
    assert set(lake.maintained(old)) == set(indicators.columns())
    assert_frame_equal(
        curated(old).drop("ingest_date"),
        curated(reference).drop("ingest_date"),
        rel_tol=1e-9,
        abs_tol=1e-12,
    )
    # Idempotent: a second backfill writes nothing.
    after = digests(old)
    again = pipeline.backfill_indicators(old, ["rsi_14"])
    assert again[0].rows_out == 0
    assert digests(old) == after


def test_a_range_backfill_fills_only_its_rows_and_leaves_the_indicator_pending(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=str(tmp_path / "lake"))
    build(settings, [DAYS[-1]])
    make_legacy(settings)
    start, end = dt.date(2023, 3, 1), dt.date(2023, 3, 31)
    pipeline.backfill_indicators(settings, ["atr_14"], start=start, end=end)
    rows = curated(settings)
    in_march = pl.col("trade_date").is_between(start, end)
    assert rows.filter(in_march)["atr_14"].null_count() == 0
    assert rows.filter(~in_march)["atr_14"].null_count() == rows.filter(~in_march).height
    assert "atr_14" not in lake.maintained(settings)


def test_a_partition_that_lost_a_column_is_reported_by_name(tmp_path: Path) -> None:
    settings = Settings(data_dir=str(tmp_path / "lake"))
    build(settings, [HISTORY[-1]])
    path = max(Path(settings.data_dir, "curated", "stock_prices").rglob("*.parquet"))
    pq.write_table(pq.read_table(path).drop_columns(["ingest_date"]), path)
    day = DAILY[0]
    land(settings, day, BARS.filter(pl.col("trade_date") == day))
    with pytest.raises(DataError, match=r"lacks column.*ingest_date") as caught:
        transform(settings, day, gate=unvalidated(settings, day))
    assert caught.value.file == str(path)


def test_a_lake_from_a_newer_fdp_is_refused(tmp_path: Path) -> None:
    settings = Settings(data_dir=str(tmp_path / "lake"))
    build(settings, [HISTORY[-1]])
    schema = Path(settings.data_dir, "curated", lake.SCHEMA)
    schema.write_text(json.dumps({"version": lake.SCHEMA_VERSION + 1, "indicators": []}))
    with pytest.raises(DataError, match="newer"):
        lake.maintained(settings)


USER_MODULE = """
from fdp.indicators import Indicator, col, register, rolling_max, rolling_min

low, high = rolling_min(col("split_adjusted_low"), 14), rolling_max(col("split_adjusted_high"), 14)
register(Indicator(
    "stoch_k_14",
    100 * (col("split_adjusted_close") - low) / (high - low),
    "fast stochastic %K over 14 rows",
))
"""


def _fdp(settings: Settings, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fdp", *args],
        env={**os.environ, "FDP_DATA_DIR": settings.data_dir, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def _stochastic(settings: Settings) -> pl.DataFrame:
    """The lake's stoch_k_14 beside the same formula in plain Polars (files read directly:
    this process has not registered the indicator)."""
    rows = pl.read_parquet(f"{settings.data_dir}/curated/stock_prices/**/*.parquet").sort(lake.KEY)
    p, factor = pl.col("split_adjusted_close"), pl.col("close") / pl.col("split_adjusted_close")
    low = (pl.col("low") / factor).rolling_min(14).over("symbol")
    high = (pl.col("high") / factor).rolling_max(14).over("symbol")
    return rows.select((100 * (p - low) / (high - low)).alias("want"), "stoch_k_14")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("declared_by", "engine"),
    [
        pytest.param("setting", "spark", marks=pytest.mark.spark),
        pytest.param("entry point", "polars"),
    ],
)
def test_a_user_indicator_is_added_to_an_existing_lake_and_backfilled(
    tmp_path: Path, declared_by: str, engine: str
) -> None:
    settings = Settings(data_dir=str(tmp_path / "lake"))
    build(settings, [DAYS[-2]])
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "my_indicators.py").write_text(textwrap.dedent(USER_MODULE))
    env = {"PYTHONPATH": os.pathsep.join([str(plugins), os.environ.get("PYTHONPATH", "")])}
    if declared_by == "setting":
        env["FDP_INDICATORS"] = "my_indicators"
    else:
        info = plugins / "my_indicators-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-indicators\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text("[fdp.indicators]\nstoch = my_indicators\n")
    done = _fdp(settings, env, "backfill", "--indicators", "stoch_k_14")
    assert done.returncode == 0, done.stderr + done.stdout
    want = _stochastic(settings)
    assert want["stoch_k_14"].null_count() == 2 * 13
    assert_frame_equal(
        want.select(pl.col("stoch_k_14").alias("want")), want.select("want"), rel_tol=1e-9
    )
    query = _fdp(settings, env, "query", "SELECT count(stoch_k_14) AS n FROM fact_stock_prices")
    assert query.returncode == 0, query.stderr
    assert str(want["stoch_k_14"].count()) in query.stdout
    schema = json.loads(Path(settings.data_dir, "curated", lake.SCHEMA).read_text())
    assert "stoch_k_14" in schema["indicators"]
    # The next daily run keeps it up to date, on either engine.
    day = DAYS[-1]
    land(settings, day, BARS.filter(pl.col("trade_date") == day))
    args = ("transform", "--date", str(day), "--engine", engine, "--override-gate", "test")
    daily = _fdp(settings, env, *args)
    assert daily.returncode == 0, daily.stderr + daily.stdout
    want = _stochastic(settings)
    assert want.height == BARS.height
    assert want["stoch_k_14"].null_count() == 2 * 13
    assert_frame_equal(
        want.select(pl.col("stoch_k_14").alias("want")), want.select("want"), rel_tol=1e-9
    )
    # Without the module the lake still reads, but no run may write it (and drop the column).
    plain = _fdp(settings, {}, "query", "SELECT count(*) FROM fact_stock_prices")
    assert plain.returncode == 0, plain.stderr
    assert lake.scan(settings).collect().height == want.height
    with pytest.raises(ConfigError, match=r"stoch_k_14.*not registered"):
        lake.maintained(settings)
