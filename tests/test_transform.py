"""The transform stage's contract: incremental == full, any order, late bars, idempotent, safe."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from bars import land, random_bars, unvalidated
from fdp import lake
from fdp.calendar import sessions
from fdp.config import Settings
from fdp.errors import DataError
from fdp.rejected import read_rejected
from fdp.sources.landing import RawZone
from fdp.transform import transform

DAYS = sessions(dt.date(2023, 1, 1), dt.date(2023, 5, 31))
HISTORY, DAILY = DAYS[:-8], DAYS[-8:]
SYMBOLS = ["AAA", "BB.B", "CCC"]
BARS = random_bars(SYMBOLS, DAYS, seed=7).with_columns(
    # a split inside the daily runs and one in the history
    split_coefficient=pl.when(
        (pl.col("symbol") == "CCC") & pl.col("trade_date").is_in([DAYS[-3], DAYS[30]])
    )
    .then(2.0)
    .otherwise(pl.col("split_coefficient"))
)

CORRECTED_DAY = DAILY[3]
CORRECTION = BARS.filter(
    (pl.col("symbol") == "AAA") & (pl.col("trade_date") == HISTORY[-30])
).with_columns(close=pl.col("close") * 1.1)
FINAL = BARS.update(CORRECTION, on=["symbol", "trade_date"])
"""The bars as the last ingest of each key has them."""


def curated(settings: Settings) -> pl.DataFrame:
    """The curated rows without their lineage (which run computed them, from which batch)."""
    rows = lake.scan(settings).collect().sort("symbol", "trade_date")
    return rows.drop("processing_timestamp", "ingest_date")


def digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def land_daily(settings: Settings) -> None:
    """History in one batch the day before the dailies, then one batch per session; one of
    them also corrects a bar of the history."""
    land(settings, HISTORY[-1], BARS.filter(pl.col("trade_date").is_in(HISTORY)))
    for day in DAILY:
        bars = BARS.filter(pl.col("trade_date") == day)
        land(settings, day, pl.concat([bars, CORRECTION]) if day == CORRECTED_DAY else bars)


def all_at_once(tmp_path: Path, bars: pl.DataFrame = FINAL) -> pl.DataFrame:
    reference = Settings(data_dir=str(tmp_path / "reference"))
    land(reference, DAYS[-1], bars)
    transform(reference, DAYS[-1], gate=unvalidated(reference, DAYS[-1]))
    return curated(reference)


def assert_same_rows(left: pl.DataFrame, right: pl.DataFrame) -> None:
    assert_frame_equal(left, right, check_exact=False, rel_tol=1e-9, abs_tol=1e-12)


def test_day_by_day_equals_all_at_once(settings: Settings, tmp_path: Path) -> None:
    land_daily(settings)
    for day in [HISTORY[-1], *DAILY]:
        transform(settings, day, gate=unvalidated(settings, day))
    assert_same_rows(curated(settings), all_at_once(tmp_path))


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(order=st.permutations([HISTORY[-1], *DAILY]))
def test_any_order_gives_the_same_rows(tmp_path: Path, order: list[dt.date]) -> None:
    run = Settings(data_dir=str(tmp_path / f"run-{'-'.join(d.isoformat() for d in order)}"))
    land_daily(run)
    for day in order:
        transform(run, day, gate=unvalidated(run, day))
    assert_same_rows(curated(run), all_at_once(tmp_path / "ref"))


def test_a_corrected_bar_updates_that_row_and_every_later_one(
    settings: Settings, tmp_path: Path
) -> None:
    # Both batches are ingested after the last bar: no bar may postdate its ingest.
    first, second = DAYS[-1], DAYS[-1] + dt.timedelta(days=1)
    land(settings, first, BARS)
    transform(settings, first, gate=unvalidated(settings, first))
    before = curated(settings)
    late = DAYS[-20]
    fix = BARS.filter((pl.col("symbol") == "AAA") & (pl.col("trade_date") == late))
    fix = fix.with_columns(close=pl.col("close") * 1.1)
    land(settings, second, fix)
    result = transform(settings, second, gate=unvalidated(settings, second))
    after = curated(settings)
    corrected = BARS.update(fix, on=["symbol", "trade_date"])
    assert_same_rows(after, all_at_once(tmp_path, corrected))
    moved = (after["sma_5"] != before["sma_5"]) | (after["close"] != before["close"])
    changed = after.filter(moved).select("symbol", "trade_date")
    assert set(changed["symbol"]) == {"AAA"}
    assert changed["trade_date"].min() == late
    keys = lake.changed_keys(settings, second)
    assert keys["trade_date"].min() == late
    assert keys.height == 20
    assert result.rows_written == 20


def test_an_older_batch_run_after_a_newer_correction_does_not_win(
    settings: Settings, tmp_path: Path
) -> None:
    land_daily(settings)
    transform(settings, CORRECTED_DAY, gate=unvalidated(settings, CORRECTED_DAY))
    result = transform(settings, HISTORY[-1], gate=unvalidated(settings, HISTORY[-1]))
    assert result.rejected == 1
    (rejected,) = read_rejected(settings, HISTORY[-1], "cleanse").to_dicts()
    assert (rejected["symbol"], rejected["timestamp"], rejected["rule"]) == (
        "AAA",
        HISTORY[-30].isoformat(),
        "superseded",
    )
    assert str(CORRECTED_DAY) in rejected["reason"]
    for day in DAILY:
        transform(settings, day, gate=unvalidated(settings, day))
    assert_same_rows(curated(settings), all_at_once(tmp_path))
    stored = lake.scan(settings).filter(pl.col("trade_date") == HISTORY[-30]).collect()
    assert dict(stored.select("symbol", "ingest_date").iter_rows()) == {
        "AAA": CORRECTED_DAY,
        "BB.B": HISTORY[-1],
        "CCC": HISTORY[-1],
    }


def test_rerunning_a_date_changes_nothing(settings: Settings) -> None:
    land_daily(settings)
    for day in [HISTORY[-1], *DAILY]:
        transform(settings, day, gate=unvalidated(settings, day))
    root = Path(settings.data_dir)
    before = digests(root)
    again = transform(settings, DAILY[-1], gate=unvalidated(settings, DAILY[-1]))
    assert digests(root) == before
    assert again.rows_written == 0
    assert again.partitions_replaced == 0
    assert again.changed_keys == len(SYMBOLS)


def test_a_malformed_raw_file_stops_the_run_before_the_lake_changes(settings: Settings) -> None:
    land(settings, DAYS[-2], BARS.filter(pl.col("trade_date") < DAYS[-1]))
    transform(settings, DAYS[-2], gate=unvalidated(settings, DAYS[-2]))
    zone = RawZone(settings)
    zone.land("simulator", DAYS[-1], "AAA", b'{"Meta Data": {"2. Symbol": "AAA"}', rows=1)
    before = digests(Path(settings.data_dir) / "curated")
    with pytest.raises(DataError, match=r"symbol=AAA\.json.*malformed JSON"):
        transform(settings, DAYS[-1], gate=unvalidated(settings, DAYS[-1]))
    assert digests(Path(settings.data_dir) / "curated") == before


CRASH = textwrap.dedent(
    """
    import datetime as dt, os, signal, sys
    from fdp import lake
    from fdp.config import Settings
    from fdp.quality.gate import Gate
    from fdp.transform import transform

    real = lake._write_table

    def half_then_die(rows, sink):
        real(rows, sink)
        os.truncate(sink, os.path.getsize(sink) // 2)
        os.kill(os.getpid(), signal.SIGKILL)

    lake._write_table = half_then_die
    settings, day = Settings(data_dir=sys.argv[1]), dt.date.fromisoformat(sys.argv[2])
    transform(settings, day, gate=Gate(settings, "simulator", day, override="crash test"))
    """
)


def test_a_crash_mid_partition_write_leaves_the_previous_lake(settings: Settings) -> None:
    land(settings, DAYS[-2], BARS.filter(pl.col("trade_date") < DAYS[-1]))
    transform(settings, DAYS[-2], gate=unvalidated(settings, DAYS[-2]))
    before = curated(settings)
    curated_dir = Path(settings.data_dir) / "curated" / "stock_prices"
    files_before = digests(curated_dir)
    land(settings, DAYS[-1], BARS.filter(pl.col("trade_date") == DAYS[-1]))
    env = os.environ | {"PYTHONPATH": "src"}
    proc = subprocess.run(
        [sys.executable, "-c", CRASH, settings.data_dir, DAYS[-1].isoformat()],
        env=env,
        capture_output=True,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    leftovers = list(curated_dir.rglob(".*.tmp"))
    assert leftovers, "the kill should have hit a half-written temporary file"
    assert {
        k: v for k, v in digests(curated_dir).items() if not k.rsplit("/", 1)[-1].startswith(".")
    } == files_before
    assert_frame_equal(curated(settings), before)
    transform(settings, DAYS[-1], gate=unvalidated(settings, DAYS[-1]))
    assert not list(curated_dir.rglob(".*.tmp"))
    assert curated(settings)["trade_date"].max() == DAYS[-1]
