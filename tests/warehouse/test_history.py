"""The warehouse's version history (migration 6), loaded run by run: ``as_of`` reads from it
equal the lake's."""

from __future__ import annotations

from polars.testing import assert_frame_equal

from fdp.config import Settings
from fdp.data import read
from fdp.warehouse.loader import load_run
from restatements import DAYS, FIRST, VALUES, batches, run


def test_the_warehouse_answers_as_of_like_the_lake(wh_settings: Settings) -> None:
    raw = batches()
    run(wh_settings, raw)
    for day in sorted(raw):
        load_run(wh_settings, day)
    load_run(wh_settings, DAYS[FIRST + 4])  # a re-run of a load adds no version twice
    for day in sorted(raw):
        got = read(columns=VALUES, as_of=day, source="warehouse", settings=wh_settings)
        assert_frame_equal(got, read(columns=VALUES, as_of=day, settings=wh_settings))
    assert_frame_equal(
        read(columns=VALUES, source="warehouse", settings=wh_settings),
        read(columns=VALUES, settings=wh_settings),
    )
