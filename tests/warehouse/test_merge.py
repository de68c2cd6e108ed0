"""The merge's two paths on a real DuckDB file and a real PostgreSQL.

A batch whose key ranges hold no stored row skips the DELETE; any other batch replaces the
stored rows it carries (PostgreSQL: only those it carries with other values). Either is
reconciled over its key ranges. Rows the batch does not carry, even inside its ranges, must
survive either way. The oracle is the batches
themselves (last one wins per key), read back from the warehouse value for value.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import psycopg
import pytest
from polars.testing import assert_frame_equal
from wh_helpers import expected, fact_rows, make_rows, write_run

from fdp import lake
from fdp.config import Settings
from fdp.records import EnrichedStockRecord, Frame
from fdp.warehouse import connect, load_rows, migrate, read_changes
from fdp.warehouse.base import Warehouse
from fdp.warehouse.reconcile import ReconciliationError

DAYS = [dt.date(2024, 1, d) for d in (29, 30, 31)] + [dt.date(2024, 2, d) for d in (1, 2)]
STORED = make_rows(["AAA", "BBB"], DAYS[:3], seed=20)
BESIDE = make_rows(["AAA", "CCC"], DAYS[3:], seed=21, processed=1)
"""New dates of a stored symbol and a new symbol: no stored row inside their ranges."""
OVER = make_rows(["BBB"], [DAYS[0], DAYS[2], DAYS[4]], seed=22, processed=2)
"""Replaces two stored rows, adds one, and spans a stored row it does not carry (DAYS[1])."""
RESTATED = make_rows(["AAA", "BBB"], DAYS[:3], seed=25, processed=3)
"""Every stored key again, with other values."""


def _load(warehouse: Warehouse, rows: pl.DataFrame) -> None:
    load_rows(warehouse, Frame(EnrichedStockRecord, rows), "batch")


def test_batches_beside_and_over_stored_rows_leave_every_other_row(wh_settings: Settings) -> None:
    url = wh_settings.warehouse_url
    warehouse = connect(url, wh_settings)
    migrate(warehouse)
    for batch in (STORED, BESIDE, OVER):
        _load(warehouse, batch)
    assert_frame_equal(fact_rows(url, wh_settings), expected(STORED, BESIDE, OVER))
    _load(warehouse, OVER)  # the same batch again: every key it holds is stored now
    assert_frame_equal(fact_rows(url, wh_settings), expected(STORED, BESIDE, OVER))
    _load(warehouse, RESTATED)  # every stored row of its ranges changed: deleted by range
    assert_frame_equal(fact_rows(url, wh_settings), expected(STORED, BESIDE, OVER, RESTATED))


def _pg_warehouse(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    settings = Settings(data_dir=str(tmp_path_factory.mktemp("data")))
    warehouse = connect(pg_url, settings)
    migrate(warehouse)
    return warehouse


def _versions(warehouse: Warehouse) -> dict[tuple[str, dt.date], str]:
    """Each stored row's version: the transaction that wrote it (``xmin``), which a row
    deleted and inserted again cannot keep. (DuckDB's row ids are no such witness: a
    checkpoint renumbers them.)"""
    table = warehouse.query("SELECT symbol, trade_date, xmin::text AS v FROM fact_stock_prices")
    return {(r["symbol"], r["trade_date"]): r["v"] for r in table.to_pylist()}


@pytest.mark.postgres
def test_a_batch_loaded_again_rewrites_nothing_and_a_correction_only_its_row(
    pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    warehouse = _pg_warehouse(pg_url, tmp_path_factory)
    _load(warehouse, STORED)
    first = _versions(warehouse)
    _load(warehouse, STORED)
    assert _versions(warehouse) == first
    one = (pl.col("symbol") == "BBB") & (pl.col("trade_date") == DAYS[1])
    corrected = STORED.with_columns(pl.when(one).then(pl.col("volume") + 1).otherwise("volume"))
    _load(warehouse, corrected)
    now = _versions(warehouse)
    assert {key for key, version in now.items() if first[key] != version} == {("BBB", DAYS[1])}
    assert_frame_equal(fact_rows(pg_url, Settings()), expected(corrected))


def _log_deletes(pg_url: str) -> None:
    """A statement trigger logging each DELETE on the fact table with the rows it removed."""
    with psycopg.connect(pg_url) as con:
        con.execute("CREATE TABLE deletes (at BIGSERIAL, removed BIGINT)")
        con.execute(
            "CREATE FUNCTION log_delete() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "INSERT INTO deletes (removed) SELECT COUNT(*) FROM gone; RETURN NULL; END $$"
        )
        con.execute(
            "CREATE TRIGGER log_delete AFTER DELETE ON fact_stock_prices REFERENCING OLD TABLE "
            "AS gone FOR EACH STATEMENT EXECUTE FUNCTION log_delete()"
        )


@pytest.mark.postgres
def test_a_symbol_changed_whole_is_deleted_by_range_the_others_by_key(
    pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Every stored row of AAA changes, one of BBB's: AAA's rows go in one DELETE over its
    range, BBB's one row by its key; the other BBB rows stay as stored."""
    warehouse = _pg_warehouse(pg_url, tmp_path_factory)
    _load(warehouse, STORED)
    first = _versions(warehouse)
    _log_deletes(pg_url)
    one = (pl.col("symbol") == "AAA") | (pl.col("trade_date") == DAYS[1])
    mixed = STORED.with_columns(pl.when(one).then(pl.col("volume") + 1).otherwise("volume"))
    _load(warehouse, mixed)
    with psycopg.connect(pg_url) as con:
        assert con.execute("SELECT removed FROM deletes ORDER BY at").fetchall() == [(3,), (1,)]
    kept = {key for key, version in _versions(warehouse).items() if first[key] == version}
    assert kept == {("BBB", DAYS[0]), ("BBB", DAYS[2])}
    assert_frame_equal(fact_rows(pg_url, Settings()), expected(mixed))


@pytest.mark.postgres
def test_delete_runs_only_when_stored_rows_fall_inside_the_ranges(
    pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A statement trigger logs each DELETE the merge runs, with the rows it removed."""
    warehouse = _pg_warehouse(pg_url, tmp_path_factory)
    _log_deletes(pg_url)
    logged = []
    for batch in (STORED, BESIDE, OVER):
        _load(warehouse, batch)
        with psycopg.connect(pg_url) as con:
            logged.append(con.execute("SELECT removed FROM deletes ORDER BY at").fetchall())
    assert logged == [[], [], [(2,)]]


@pytest.mark.postgres
@pytest.mark.parametrize(
    "batch",
    [BESIDE, RESTATED, OVER],
    ids=["ranges empty", "ranges replaced whole", "ranges holding other rows"],
)
def test_a_warehouse_storing_other_values_fails_reconciliation_and_keeps_its_rows(
    pg_url: str, tmp_path_factory: pytest.TempPathFactory, batch: pl.DataFrame
) -> None:
    """A row trigger changes volumes on their way in: reconciliation names each such row."""
    warehouse = _pg_warehouse(pg_url, tmp_path_factory)
    _load(warehouse, STORED)
    with psycopg.connect(pg_url) as con:
        con.execute(
            "CREATE FUNCTION nudge() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.trade_date >= DATE '2024-01-31' THEN NEW.volume := NEW.volume + 1; END IF; "
            "RETURN NEW; END $$"
        )
        con.execute(
            "CREATE TRIGGER nudge BEFORE INSERT ON fact_stock_prices "
            "FOR EACH ROW EXECUTE FUNCTION nudge()"
        )
    with pytest.raises(
        ReconciliationError, match=r"reconciliation failed for batch .*changed"
    ) as e:
        _load(warehouse, batch)
    nudged = batch.filter(pl.col("trade_date") >= dt.date(2024, 1, 31)).select(
        "symbol", "trade_date"
    )
    assert e.value.differences == {"changed": nudged.sort("symbol", "trade_date").rows()}
    assert_frame_equal(fact_rows(pg_url, Settings()), expected(STORED))


def test_a_run_reads_whole_months_and_single_keys_alike(settings: Settings) -> None:
    """January is changed whole (read without the key join), February in part."""
    rows = make_rows(["AAA", "BBB"], DAYS, seed=23)
    write_run(settings, DAYS[-1], rows)
    changed = rows.filter((pl.col("trade_date").dt.month() == 1) | (pl.col("symbol") == "AAA"))
    lake.write_changes(settings, DAYS[-1], changed.select("symbol", "trade_date"))
    got = read_changes(settings, DAYS[-1]).df.sort("symbol", "trade_date")
    assert_frame_equal(got, changed.sort("symbol", "trade_date"))


def test_a_batch_in_many_chunks_loads_whole(wh_settings: Settings) -> None:
    """Rows read from the lake come in hundreds of chunks, not always aligned across columns:
    DuckDB takes them chunk by chunk, PostgreSQL's COPY in slices across them."""
    parts = [make_rows(["AAA", "BBB"], [day], seed=30 + i) for i, day in enumerate(DAYS)]
    batch = pl.concat(parts, rechunk=False)
    batch = batch.with_columns(pl.Series("close", batch["close"].to_list(), pl.Float64))
    assert batch["symbol"].n_chunks() == len(DAYS)
    assert batch["close"].n_chunks() == 1
    warehouse = connect(wh_settings.warehouse_url, wh_settings)
    migrate(warehouse)
    _load(warehouse, batch)
    assert_frame_equal(fact_rows(wh_settings.warehouse_url, wh_settings), expected(batch))


@pytest.mark.postgres
def test_a_row_appearing_inside_empty_ranges_fails_the_load_naming_it(
    pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The ranges held no row when checked, yet one appears inside them during the load (a
    trigger stands in for a writer that ignores the load lock): the warehouse would hold a row
    the lake lacks, so reconciliation names it and the load rolls back."""
    warehouse = _pg_warehouse(pg_url, tmp_path_factory)
    _load(warehouse, STORED)
    gappy = make_rows(["DDD"], [DAYS[0], DAYS[4]], seed=24)
    with psycopg.connect(pg_url) as con:
        con.execute(
            "CREATE FUNCTION intrude() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "DECLARE r fact_stock_prices; BEGIN "
            "IF pg_trigger_depth() = 1 THEN "
            "SELECT * INTO r FROM fact_stock_prices WHERE symbol = 'DDD' LIMIT 1; "
            "IF FOUND THEN r.trade_date := DATE '2024-01-31'; r.price_id := 'DDD_20240131'; "
            "INSERT INTO fact_stock_prices SELECT r.*; END IF; END IF; RETURN NULL; END $$"
        )
        con.execute(
            "CREATE TRIGGER intrude AFTER INSERT ON fact_stock_prices "
            "FOR EACH STATEMENT EXECUTE FUNCTION intrude()"
        )
    with pytest.raises(ReconciliationError) as caught:
        _load(warehouse, gappy)
    assert caught.value.differences == {"extra in warehouse": [("DDD", DAYS[2])]}
    assert "extra in warehouse 1: DDD 2024-01-31" in str(caught.value)
    assert_frame_equal(fact_rows(pg_url, Settings()), expected(STORED))


@pytest.mark.postgres
def test_a_batch_longer_than_the_encoders_lead_arrives_whole(
    pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """More chunks than the encoder may run ahead of the COPY, rows out of key order; the
    load's own reconciliation checks every value, the table's extent is checked here."""
    one = make_rows(["AAA"], [dt.date(2000, 1, 1) + dt.timedelta(days=d) for d in range(6_000)])
    day = pl.col("trade_date").dt.strftime("%Y%m%d")
    batch = pl.concat(
        one.with_columns(pl.lit(s).alias("symbol"), (pl.lit(f"{s}_") + day).alias("price_id"))
        for s in (f"S{i:02d}" for i in range(60))
    ).reverse()
    warehouse = _pg_warehouse(pg_url, tmp_path_factory)
    _load(warehouse, batch)
    extent = "SELECT COUNT(*), MIN(price_id), MAX(price_id) FROM fact_stock_prices"
    ids = batch["price_id"]
    assert warehouse.query(extent).to_pylist()[0] == {
        "count": batch.height,
        "min": ids.min(),
        "max": ids.max(),
    }


@pytest.mark.postgres
def test_loads_that_rebuild_the_primary_key_leave_it_in_place(
    pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A load into the empty table, and one rewriting most of it, drop the primary key and add
    it back after the rows (a new index each time): it must be there after each, rejecting a
    second row of a key. A load rewriting one row keeps the index it found."""
    warehouse = _pg_warehouse(pg_url, tmp_path_factory)
    key = (
        "SELECT conname, conindid FROM pg_constraint "
        "WHERE conrelid = 'fact_stock_prices'::regclass AND contype = 'p'"
    )
    one = (pl.col("symbol") == "BBB") & (pl.col("trade_date") == DAYS[1])
    corrected = RESTATED.with_columns(pl.when(one).then(pl.col("volume") + 1).otherwise("volume"))
    indexes = []
    with psycopg.connect(pg_url, autocommit=True) as con:
        for batch in (STORED, RESTATED, corrected):
            _load(warehouse, batch)
            con.execute("ANALYZE fact_stock_prices")
            [(name, index)] = con.execute(key).fetchall()
            assert name == "fact_stock_prices_pkey"
            indexes.append(index)
        assert indexes[0] != indexes[1] == indexes[2]
        with pytest.raises(psycopg.errors.UniqueViolation):
            con.execute(
                "INSERT INTO fact_stock_prices SELECT * FROM fact_stock_prices "
                "WHERE symbol = 'AAA' AND trade_date = DATE '2024-01-29'"
            )
    assert_frame_equal(fact_rows(pg_url, Settings()), expected(corrected))
