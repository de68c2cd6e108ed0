"""Point-in-time reads: ``fdp.read(as_of=D)`` equals a fresh backfill of the raw batches with
ingest_date <= D, through restatements, late bars, splits and re-deliveries."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from bars import land, random_bars, unvalidated
from fdp import history, lake
from fdp.calendar import sessions
from fdp.config import Settings
from fdp.data import ReadError, read
from fdp.transform import transform
from fdp.warehouse.loader import load_run

DAYS = sessions(dt.date(2024, 1, 2), dt.date(2024, 5, 31))
SYMBOLS = ["AAA", "BBB", "CCC"]
FIRST = 70
"""The first batch delivers DAYS[:FIRST]; each later batch one new session (and corrections)."""


def _bars() -> pl.DataFrame:
    bars = random_bars(SYMBOLS, DAYS, seed=7)
    return bars.with_columns(pl.lit(1.0).alias("split_coefficient"))


def _restated(bars: pl.DataFrame, symbol: str, day: dt.date, factor: float) -> pl.DataFrame:
    """The bar of ``symbol`` on ``day`` with its prices scaled by ``factor``."""
    row = bars.filter((pl.col("symbol") == symbol) & (pl.col("trade_date") == day))
    prices = ["open", "high", "low", "close", "adjusted_close"]
    return row.with_columns(pl.col(p) * factor for p in prices)


def _batches() -> dict[dt.date, pl.DataFrame]:
    """The raw batches by ingest date: a history, then daily bars with corrections in them."""
    bars = _bars()
    on = lambda day: bars.filter(pl.col("trade_date") == day)  # noqa: E731
    first = DAYS[FIRST - 1]
    batches = {first: bars.filter(pl.col("trade_date") <= first)}
    late_day = DAYS[FIRST + 1]
    for i in range(FIRST, FIRST + 8):
        day = DAYS[i]
        batches[day] = on(day)
    # A restatement two sessions back: AAA's rows from it on change, indicators included.
    batches[DAYS[FIRST + 1]] = pl.concat(
        [on(DAYS[FIRST + 1]), _restated(bars, "AAA", DAYS[FIRST - 1], 1.03)]
    ).filter(~((pl.col("symbol") == "BBB") & (pl.col("trade_date") == late_day)))
    # BBB's bar of late_day arrives a session late; CCC's bar of long ago is corrected.
    batches[DAYS[FIRST + 2]] = pl.concat(
        [
            on(DAYS[FIRST + 2]),
            on(late_day).filter(pl.col("symbol") == "BBB"),
            _restated(bars, "CCC", DAYS[3], 0.9),
        ]
    )
    # AAA's bar restated again (a second version of the same key), and a split learnt late.
    split = _restated(bars, "BBB", DAYS[40], 0.5).with_columns(
        pl.lit(2.0).alias("split_coefficient"), pl.col("volume") * 2
    )
    batches[DAYS[FIRST + 4]] = pl.concat(
        [on(DAYS[FIRST + 4]), _restated(bars, "AAA", DAYS[FIRST - 1], 0.97), split]
    )
    # The same bar delivered again unchanged: only its ingest date moves.
    batches[DAYS[FIRST + 6]] = pl.concat(
        [on(DAYS[FIRST + 6]), on(DAYS[FIRST + 5]).filter(pl.col("symbol") == "CCC")]
    )
    return batches


def _run(settings: Settings, batches: dict[dt.date, pl.DataFrame]) -> None:
    for day, rows in sorted(batches.items()):
        land(settings, day, rows.sort("symbol", "trade_date"))
        transform(settings, day, gate=unvalidated(settings, day))


VALUES = [c for c in lake.file_columns() if c != "processing_timestamp"]


def test_as_of_every_ingest_date_equals_a_backfill_truncated_there(tmp_path: Path) -> None:
    batches = _batches()
    daily = Settings(data_dir=str(tmp_path / "daily"))
    _run(daily, batches)
    assert history.partitions(daily), "the corrections must have left versions behind"
    for day in sorted(batches):
        fresh = Settings(data_dir=str(tmp_path / f"fresh-{day}"))
        _run(fresh, {d: rows for d, rows in batches.items() if d <= day})
        expected = read(columns=VALUES, settings=fresh)
        got = read(columns=VALUES, as_of=day, settings=daily)
        assert_frame_equal(got, expected, check_exact=False, rel_tol=1e-9, abs_tol=0)
    # Between ingest dates the answer is the previous date's; after the last, the current rows.
    assert_frame_equal(
        read(columns=VALUES, as_of=dt.date(2099, 1, 1), settings=daily),
        read(columns=VALUES, settings=daily),
    )


def test_as_of_shows_the_old_value_before_the_correction_and_the_new_one_after(
    settings: Settings,
) -> None:
    batches = _batches()
    _run(settings, batches)
    restated, before, after = DAYS[FIRST - 1], DAYS[FIRST], DAYS[FIRST + 1]
    one = ["close", "sma_5", "ingest_date"]
    old = read("AAA", restated, restated, one, as_of=before, settings=settings)
    new = read("AAA", restated, restated, one, as_of=after, settings=settings)
    assert new["close"].item() == pytest.approx(old["close"].item() * 1.03)
    assert new["sma_5"].item() != pytest.approx(old["sma_5"].item())
    assert (old["ingest_date"].item(), new["ingest_date"].item()) == (restated, after)
    # The bar delivered late is absent before its delivery.
    late = DAYS[FIRST + 1]
    with pytest.raises(ReadError, match="no rows"):
        read("BBB", late, late, as_of=late, settings=settings)
    assert read("BBB", late, late, as_of=DAYS[FIRST + 2], settings=settings).height == 1


def test_the_history_holds_only_replaced_rows_and_a_rerun_adds_none(settings: Settings) -> None:
    batches = _batches()
    _run(settings, batches)
    files = {
        p: Path(history.partition_url(settings, p)).read_bytes()
        for p in history.partitions(settings)
    }
    held = pl.concat([history.read_partition(settings, p) for p in files])
    lake_rows = sum(lake.read_partition(settings, p).height for p in lake.partitions(settings))
    assert 0 < held.height < lake_rows
    assert held.select(history.VERSION_KEY).is_duplicated().sum() == 0
    for day in sorted(batches):
        transform(settings, day, gate=unvalidated(settings, day))
    assert {p: Path(history.partition_url(settings, p)).read_bytes() for p in files} == files
    assert history.partitions(settings) == sorted(files)


def test_the_warehouse_answers_as_of_like_the_lake(settings: Settings) -> None:
    batches = _batches()
    _run(settings, batches)
    for day in sorted(batches):
        load_run(settings, day)
    load_run(settings, DAYS[FIRST + 4])  # a re-run of a load adds no version twice
    for day in sorted(batches):
        got = read(columns=VALUES, as_of=day, source="warehouse", settings=settings)
        assert_frame_equal(got, read(columns=VALUES, as_of=day, settings=settings))
    assert_frame_equal(
        read(columns=VALUES, source="warehouse", settings=settings),
        read(columns=VALUES, settings=settings),
    )


def test_a_run_killed_after_keeping_versions_keeps_each_once_on_its_rerun(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The versions are kept before the partitions are swapped in: a run that dies between the
    two leaves them kept and the lake unchanged; its re-run keeps nothing twice."""
    batches = _batches()
    restated = DAYS[FIRST + 1]
    _run(settings, {d: b for d, b in batches.items() if d < restated})
    land(settings, restated, batches[restated].sort("symbol", "trade_date"))

    def killed(*args: object, **kwargs: object) -> None:
        raise RuntimeError("killed between keeping versions and publishing")

    with monkeypatch.context() as patched:
        patched.setattr(lake, "publish", killed)
        with pytest.raises(RuntimeError, match="killed"):
            transform(settings, restated, gate=unvalidated(settings, restated))
    kept = pl.concat([history.read_partition(settings, p) for p in history.partitions(settings)])
    assert kept.height > 0
    unchanged = read("AAA", columns=["ingest_date"], settings=settings)
    assert unchanged["ingest_date"].max() < restated
    transform(settings, restated, gate=unvalidated(settings, restated))
    again = pl.concat([history.read_partition(settings, p) for p in history.partitions(settings)])
    assert_frame_equal(again, kept)
    _run(settings, {d: b for d, b in batches.items() if d > restated})
    fresh = Settings(data_dir=str(Path(settings.data_dir).parent / "fresh"))
    _run(fresh, {d: b for d, b in batches.items() if d <= restated})
    assert_frame_equal(
        read(columns=VALUES, as_of=restated, settings=settings),
        read(columns=VALUES, settings=fresh),
        check_exact=False,
        rel_tol=1e-9,
        abs_tol=0,
    )
