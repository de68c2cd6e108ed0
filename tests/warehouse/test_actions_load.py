"""Declared corporate actions reach the warehouse (migration 8, replaced whole by each load),
and the rows a declaration recomputed are loaded with the manifest it filed."""

from __future__ import annotations

import datetime as dt

import polars as pl
from polars.testing import assert_frame_equal

from bars import land, random_bars, unvalidated
from fdp import actions, lake
from fdp.calendar import sessions
from fdp.config import Settings
from fdp.transform.recompute import declare
from fdp.transform.stage import transform
from fdp.warehouse import sql
from fdp.warehouse.connect import connect
from fdp.warehouse.loader import load_run

DAYS = sessions(dt.date(2024, 1, 2), dt.date(2024, 2, 29))


def _in_warehouse(settings: Settings) -> tuple[pl.DataFrame, list[tuple[object, ...]]]:
    warehouse = connect(settings.warehouse_url, settings)
    table = warehouse.run(
        lambda s: s.frame(
            f"SELECT * FROM {sql.CORPORATE_ACTIONS} ORDER BY symbol, ex_date, kind", actions.SCHEMA
        )
    )
    split = warehouse.run(
        lambda s: s.fetchall(
            f"SELECT split_coefficient, split_adjusted_close FROM {sql.FACT}"
            " WHERE symbol = 'AAA' ORDER BY trade_date"
        )
    )
    return table, split


def test_declared_actions_and_their_recompute_are_loaded(wh_settings: Settings) -> None:
    bars = random_bars(["AAA", "BBB"], DAYS).with_columns(pl.lit(1.0).alias("split_coefficient"))
    day = DAYS[-1]
    land(wh_settings, day, bars)
    transform(wh_settings, day, gate=unvalidated(wh_settings, day))
    load_run(wh_settings, day)
    table, _ = _in_warehouse(wh_settings)
    assert table.is_empty()

    declare(wh_settings, actions.action("AAA", DAYS[10], "split", "2:1"))
    declare(wh_settings, actions.action("BBB", DAYS[3], "dividend", "0.82"))
    load_run(wh_settings, day)
    load_run(wh_settings, day)  # a re-run leaves the same rows
    table, split = _in_warehouse(wh_settings)
    assert_frame_equal(table, actions.read(wh_settings))
    assert table.height == 2
    stored = lake.scan(wh_settings).filter(pl.col("symbol") == "AAA").sort("trade_date").collect()
    assert [s for s, _ in split] == stored["split_coefficient"].to_list()
    assert split[0][0] == 1.0
    assert split[10][0] == 2.0
    assert [p for _, p in split] == stored["split_adjusted_close"].to_list()
    assert split[0][1] == stored["close"][0] / 2
