"""Point-in-time reads: ``fdp.read(as_of=D)`` equals a fresh backfill of the raw batches with
ingest_date <= D, through restatements, late bars, splits and re-deliveries."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from bars import land, unvalidated
from fdp import history, lake
from fdp.config import Settings
from fdp.data import ReadError, read
from fdp.transform import transform
from restatements import DAYS, FIRST, VALUES, batches, run


def test_as_of_every_ingest_date_equals_a_backfill_truncated_there(tmp_path: Path) -> None:
    raw = batches()
    daily = Settings(data_dir=str(tmp_path / "daily"))
    run(daily, raw)
    assert history.partitions(daily), "the corrections must have left versions behind"
    for day in sorted(raw):
        fresh = Settings(data_dir=str(tmp_path / f"fresh-{day}"))
        run(fresh, {d: rows for d, rows in raw.items() if d <= day})
        expected = read(columns=VALUES, settings=fresh)
        got = read(columns=VALUES, as_of=day, settings=daily)
        assert_frame_equal(got, expected, check_exact=False, rel_tol=1e-9, abs_tol=0)
    # After the last ingest date, the current rows.
    assert_frame_equal(
        read(columns=VALUES, as_of=dt.date(2099, 1, 1), settings=daily),
        read(columns=VALUES, settings=daily),
    )


def test_as_of_shows_the_old_value_before_the_correction_and_the_new_one_after(
    settings: Settings,
) -> None:
    raw = batches()
    run(settings, raw)
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
    raw = batches()
    run(settings, raw)
    files = {
        p: Path(history.partition_url(settings, p)).read_bytes()
        for p in history.partitions(settings)
    }
    held = pl.concat([history.read_partition(settings, p) for p in files])
    lake_rows = sum(lake.read_partition(settings, p).height for p in lake.partitions(settings))
    assert 0 < held.height < lake_rows
    assert held.select(history.VERSION_KEY).is_duplicated().sum() == 0
    for day in sorted(raw):
        transform(settings, day, gate=unvalidated(settings, day))
    assert {p: Path(history.partition_url(settings, p)).read_bytes() for p in files} == files
    assert history.partitions(settings) == sorted(files)


def test_a_run_killed_after_keeping_versions_keeps_each_once_on_its_rerun(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The versions are kept before the partitions are swapped in: a run that dies between the
    two leaves them kept and the lake unchanged; its re-run keeps nothing twice."""
    raw = batches()
    restated = DAYS[FIRST + 1]
    run(settings, {d: b for d, b in raw.items() if d < restated})
    land(settings, restated, raw[restated].sort("symbol", "trade_date"))

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
    run(settings, {d: b for d, b in raw.items() if d > restated})
    fresh = Settings(data_dir=str(Path(settings.data_dir).parent / "fresh"))
    run(fresh, {d: b for d, b in raw.items() if d <= restated})
    assert_frame_equal(
        read(columns=VALUES, as_of=restated, settings=settings),
        read(columns=VALUES, settings=fresh),
        check_exact=False,
        rel_tol=1e-9,
        abs_tol=0,
    )
