"""Row-exact reconciliation on a real DuckDB file and a real PostgreSQL: one body per destination.

A run is loaded (and reconciled in its transaction), then the warehouse is tampered with
behind the loader's back, one mutation per test: ``reconcile_run`` must fail naming exactly
the key that was touched. Each mutation is read back first, so a test cannot pass because the
mutation never landed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import polars as pl
import pytest
from wh_helpers import fact_rows, make_rows, write_run

from fdp import lake
from fdp.config import Settings
from fdp.errors import DataError
from fdp.records import EnrichedStockRecord, Frame
from fdp.warehouse import connect, load_rows, load_run, migrate
from fdp.warehouse.loader import reconcile_run
from fdp.warehouse.reconcile import ReconciliationError

RUN = dt.date(2024, 2, 2)
DAYS = [dt.date(2024, 1, 29), dt.date(2024, 1, 30), dt.date(2024, 2, 1), dt.date(2024, 2, 2)]
"""Weekdays with a gap (2024-01-31), so a row can be slipped inside the run's key ranges."""
GAP = dt.date(2024, 1, 31)
ROWS = make_rows(["AAA", "BB.B", "CCC"], DAYS, seed=40)
COLUMNS = EnrichedStockRecord.names()


def _execute(url: str, statement: str, params: list[Any]) -> None:
    """Run one statement on the warehouse behind the loader's back (committed)."""
    if url.startswith("duckdb:///"):
        import duckdb

        con = duckdb.connect(url.removeprefix("duckdb://"))
        try:
            con.execute(statement, params)
        finally:
            con.close()
    else:
        import psycopg

        with psycopg.connect(url) as con:
            con.execute(statement.replace("?", "%s"), params)


def _loaded(settings: Settings) -> pl.DataFrame:
    write_run(settings, RUN, ROWS)
    load_run(settings, RUN)
    assert reconcile_run(settings, RUN) == ROWS.height
    return fact_rows(settings.warehouse_url, settings)


def _row(stored: pl.DataFrame, symbol: str, day: dt.date) -> dict[str, Any]:
    return stored.filter((pl.col("symbol") == symbol) & (pl.col("trade_date") == day)).row(
        0, named=True
    )


def _set(settings: Settings, symbol: str, day: dt.date, **values: Any) -> None:
    """UPDATE one stored row's columns to ``values``, then check they landed exactly."""
    assignments = ", ".join(f"{name} = ?" for name in values)
    _execute(
        settings.warehouse_url,
        f"UPDATE fact_stock_prices SET {assignments} WHERE symbol = ? AND trade_date = ?",
        [*values.values(), symbol, day],
    )
    stored = _row(fact_rows(settings.warehouse_url, settings), symbol, day)
    assert {name: stored[name] for name in values} == values


def _fails_naming(settings: Settings, kind: str, *found: tuple[str, dt.date]) -> None:
    with pytest.raises(ReconciliationError) as caught:
        reconcile_run(settings, RUN)
    assert caught.value.differences == {kind: sorted(found)}
    message = str(caught.value)
    assert f"{kind} {len(found)}: " in message
    assert all(f"{symbol} {day}" in message for symbol, day in found)


def _non_null(stored: pl.DataFrame, *names: str) -> tuple[str, dt.date]:
    """A stored row whose ``names`` are all non-null and pairwise different."""
    for row in stored.iter_rows(named=True):
        picked = [row[n] for n in names]
        if None not in picked and len(set(picked)) == len(picked):
            return row["symbol"], row["trade_date"]
    raise AssertionError(f"no row with distinct non-null {names}")


def test_one_value_changed_by_one_ulp_is_named(wh_settings: Settings) -> None:
    stored = _loaded(wh_settings)
    symbol, day = _non_null(stored, "close")
    close = _row(stored, symbol, day)["close"]
    _set(wh_settings, symbol, day, close=float(np.nextafter(close, np.inf)))
    _fails_naming(wh_settings, "changed", (symbol, day))


def test_two_values_swapped_between_rows_are_named(wh_settings: Settings) -> None:
    """The same symbol (one segment): per-segment sums of linear row hashes would miss this."""
    stored = _loaded(wh_settings)
    first, second = _row(stored, "BB.B", DAYS[0]), _row(stored, "BB.B", DAYS[3])
    assert first["volume"] != second["volume"]
    _set(wh_settings, "BB.B", DAYS[0], volume=second["volume"])
    _set(wh_settings, "BB.B", DAYS[3], volume=first["volume"])
    _fails_naming(wh_settings, "changed", ("BB.B", DAYS[0]), ("BB.B", DAYS[3]))


def test_two_columns_swapped_within_a_row_are_named(wh_settings: Settings) -> None:
    stored = _loaded(wh_settings)
    symbol, day = _non_null(stored, "open", "high")
    row = _row(stored, symbol, day)
    _set(wh_settings, symbol, day, open=row["high"], high=row["open"])
    _fails_naming(wh_settings, "changed", (symbol, day))


def test_a_missing_row_is_named(wh_settings: Settings) -> None:
    _loaded(wh_settings)
    _execute(
        wh_settings.warehouse_url,
        "DELETE FROM fact_stock_prices WHERE symbol = ? AND trade_date = ?",
        ["CCC", DAYS[1]],
    )
    assert fact_rows(wh_settings.warehouse_url, wh_settings).height == ROWS.height - 1
    _fails_naming(wh_settings, "missing in warehouse", ("CCC", DAYS[1]))


def test_an_extra_row_inside_the_key_ranges_is_named(wh_settings: Settings) -> None:
    _loaded(wh_settings)
    copied = ", ".join("?" if c == "trade_date" else c for c in COLUMNS)
    _execute(
        wh_settings.warehouse_url,
        f"INSERT INTO fact_stock_prices ({', '.join(COLUMNS)}) SELECT {copied} "
        "FROM fact_stock_prices WHERE symbol = ? AND trade_date = ?",
        [GAP, "AAA", DAYS[1]],
    )
    assert fact_rows(wh_settings.warehouse_url, wh_settings).height == ROWS.height + 1
    _fails_naming(wh_settings, "extra in warehouse", ("AAA", GAP))


def test_a_null_where_a_value_was_is_named(wh_settings: Settings) -> None:
    stored = _loaded(wh_settings)
    symbol, day = _non_null(stored, "sma_5")
    _set(wh_settings, symbol, day, sma_5=None)
    _fails_naming(wh_settings, "changed", (symbol, day))


def test_a_zero_where_a_null_was_is_named(wh_settings: Settings) -> None:
    stored = _loaded(wh_settings)
    row = next(r for r in stored.iter_rows(named=True) if r["sma_50"] is None)
    _set(wh_settings, row["symbol"], row["trade_date"], sma_50=0.0)
    _fails_naming(wh_settings, "changed", (row["symbol"], row["trade_date"]))


def test_a_changed_text_value_is_named(wh_settings: Settings) -> None:
    stored = _loaded(wh_settings)
    price_id = _row(stored, "AAA", DAYS[2])["price_id"]
    _set(wh_settings, "AAA", DAYS[2], price_id=price_id.replace("AAA", "AAB"))
    _fails_naming(wh_settings, "changed", ("AAA", DAYS[2]))


def test_differences_of_every_kind_are_counted_and_named_together(wh_settings: Settings) -> None:
    stored = _loaded(wh_settings)
    _set(wh_settings, "AAA", DAYS[0], volume=_row(stored, "AAA", DAYS[0])["volume"] + 1)
    _execute(
        wh_settings.warehouse_url,
        "DELETE FROM fact_stock_prices WHERE symbol = ? AND trade_date >= ?",
        ["CCC", DAYS[2]],
    )
    with pytest.raises(ReconciliationError) as caught:
        reconcile_run(wh_settings, RUN)
    assert caught.value.differences == {
        "changed": [("AAA", DAYS[0])],
        "missing in warehouse": [("CCC", DAYS[2]), ("CCC", DAYS[3])],
    }
    assert str(caught.value).endswith(
        "changed 1: AAA 2024-01-29; missing in warehouse 2: CCC 2024-02-01, CCC 2024-02-02"
    )
    assert (caught.value.symbol, caught.value.date) == ("AAA", "2024-01-29")


def test_rows_of_other_runs_inside_the_ranges_are_not_extra(wh_settings: Settings) -> None:
    """A later run corrects two days of one symbol; the days between them belong to the first
    run, which the lake still holds: they stand, and a row the lake lacks would not."""
    _loaded(wh_settings)
    later = dt.date(2024, 2, 5)
    corrected = ROWS.filter(
        (pl.col("symbol") == "AAA") & pl.col("trade_date").is_in([DAYS[0], DAYS[3]])
    ).with_columns(pl.col("volume") + 7)
    write_run(wh_settings, later, corrected)
    load_run(wh_settings, later)
    assert reconcile_run(wh_settings, later) == 2
    assert reconcile_run(wh_settings, RUN) == ROWS.height


def test_a_manifest_key_missing_from_the_lake_fails_naming_it(wh_settings: Settings) -> None:
    write_run(wh_settings, RUN, ROWS)
    gone = pl.DataFrame({"symbol": ["BB.B"], "trade_date": [GAP]})
    lake.write_changes(
        wh_settings, RUN, pl.concat([ROWS.select(gone.columns), gone]).sort(gone.columns)
    )
    for step in (load_run, reconcile_run):
        with pytest.raises(ReconciliationError, match=r"missing in lake 1: BB\.B 2024-01-31") as e:
            step(wh_settings, RUN)
        assert e.value.differences == {"missing in lake": [("BB.B", GAP)]}
    migrate(connect(wh_settings.warehouse_url, wh_settings))
    assert fact_rows(wh_settings.warehouse_url, wh_settings).is_empty()


def test_a_nan_never_enters_the_warehouse(wh_settings: Settings) -> None:
    """A NaN would never reconcile (NaN != NaN): whatever its payload, the load refuses it
    naming the column and the key, and writes nothing. (The fingerprints still treat every NaN
    as one value: ``test_pghash`` checks NaN payloads bit for bit.)"""
    payloads = [0x7FF8_0000_0000_0000, 0xFFF8_0000_0000_0001, 0x7FF0_0000_0000_0002]
    nans = pl.Series("close", np.array(payloads, np.uint64).view(np.float64))
    assert nans.is_nan().all()
    rows = ROWS.head(3).with_columns(nans, pl.Series("open", [-0.0, 0.0, 5e-324]))
    warehouse = connect(wh_settings.warehouse_url, wh_settings)
    migrate(warehouse)
    with pytest.raises(DataError, match=r"'close'.*AAA") as refused:
        load_rows(warehouse, Frame(EnrichedStockRecord, rows), "batch with NaN")
    assert refused.value.field == "close"
    assert fact_rows(wh_settings.warehouse_url, wh_settings).is_empty()


def test_segment_sums_past_64_bits_arrive_exact(wh_settings: Settings) -> None:
    """A segment's sum of fingerprints outgrows 64 bits (PostgreSQL NUMERIC, DuckDB HUGEINT):
    it must reach the comparison exact, or equal segments would look different."""
    warehouse = connect(wh_settings.warehouse_url, wh_settings)
    big = 2**63 - 1
    query = (
        "SELECT s, COUNT(*), SUM(x) FROM (VALUES ('A', CAST(? AS BIGINT)), ('A', ?), ('A', -5))"
        " AS t(s, x) GROUP BY s"
    )
    schema = pl.Schema({"s": pl.String, "n": pl.Int64, "sum": pl.Int128})
    found = warehouse.run(lambda s: s.frame(warehouse.dialect.params(query), schema, (big, big)))
    assert found.rows() == [("A", 3, 2 * big - 5)]
