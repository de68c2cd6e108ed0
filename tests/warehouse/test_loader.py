"""The load stage on a real DuckDB file and a real PostgreSQL: one body per destination.

The oracle is the rows written to the lake (last batch wins per key), read back from the
warehouse and compared value for value.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from wh_helpers import expected, fact_rows, make_rows, write_run

from fdp import pipeline
from fdp.config import Settings
from fdp.errors import DataError, TerminalError, TransientError
from fdp.records import EnrichedStockRecord
from fdp.warehouse import connect, load_run, migrate, read_changes, sql
from fdp.warehouse.base import Session
from fdp.warehouse.loader import FAULT_ENV
from fdp.warehouse.migrations import MIGRATIONS

D1, D2, D3 = dt.date(2024, 1, 31), dt.date(2024, 2, 1), dt.date(2024, 2, 2)
DAYS = [dt.date(2024, 1, 29), dt.date(2024, 1, 30), D1, D2, D3]


def test_migrations_are_numbered_and_idempotent(wh_settings: Settings) -> None:
    warehouse = connect(wh_settings.warehouse_url, wh_settings)
    assert migrate(warehouse) == [m.version for m in MIGRATIONS]
    assert migrate(warehouse) == []
    versions = warehouse.query("SELECT version FROM schema_migrations ORDER BY version")
    assert versions.column(0).to_pylist() == [m.version for m in MIGRATIONS]
    assert versions.column(0).to_pylist() == list(range(1, len(MIGRATIONS) + 1))
    fact = warehouse.query(f"SELECT * FROM {sql.FACT} WHERE 1 = 0")
    assert sorted(fact.column_names) == sorted(EnrichedStockRecord.names())


def test_a_warehouse_at_version_3_gains_the_ingest_date_column(wh_settings: Settings) -> None:
    """Migration 1 creates the fact table as it first was; 4 adds ``ingest_date`` to it."""
    warehouse = connect(wh_settings.warehouse_url, wh_settings)

    def version_3(session: Session) -> None:
        session.execute(sql.create_migrations(warehouse.dialect))
        for migration in MIGRATIONS[:3]:
            for statement in migration.statements(warehouse.dialect):
                session.execute(statement)
            session.execute(
                sql.insert_migration(warehouse.dialect),
                (migration.version, migration.name, dt.datetime.now(dt.UTC)),
            )

    warehouse.run(version_3)
    before = warehouse.query(f"SELECT * FROM {sql.FACT} WHERE 1 = 0").column_names
    assert "ingest_date" not in before
    assert migrate(warehouse) == [m.version for m in MIGRATIONS[3:]]
    rows = make_rows(["AAA"], DAYS, seed=3)
    write_run(wh_settings, D3, rows)
    load_run(wh_settings, D3)
    assert_frame_equal(fact_rows(wh_settings.warehouse_url, wh_settings), expected(rows))


def test_same_run_twice_leaves_the_same_rows(wh_settings: Settings) -> None:
    rows = make_rows(["AAA", "BB.B"], DAYS, seed=1)
    write_run(wh_settings, D3, rows)
    first = load_run(wh_settings, D3)
    after_first = fact_rows(wh_settings.warehouse_url, wh_settings)
    load_run(wh_settings, D3)
    assert first.rows == 10
    assert_frame_equal(after_first, expected(rows))
    assert_frame_equal(fact_rows(wh_settings.warehouse_url, wh_settings), after_first)


def test_overlapping_ranges_leave_no_duplicates(wh_settings: Settings) -> None:
    first = make_rows(["AAA", "CCC"], DAYS[:3], seed=2)
    second = make_rows(["AAA", "CCC"], DAYS[2:], seed=3, processed=1)
    write_run(wh_settings, D1, first)
    load_run(wh_settings, D1)
    write_run(wh_settings, D3, second)
    loaded = [
        pipeline.load(wh_settings, day) for day in pipeline.loads_between(wh_settings, D1, D3)
    ]
    assert [r.run_date for r in loaded] == [D1, D3]
    pipeline.load(wh_settings, D3)
    # D1's manifest now points at rows the D3 run rewrote: the lake's current rows win.
    assert_frame_equal(fact_rows(wh_settings.warehouse_url, wh_settings), expected(first, second))


def test_missing_manifest_names_the_date_and_path(settings: Settings) -> None:
    with pytest.raises(DataError, match=r"2024-02-02.*_changes"):
        read_changes(settings, D3)


def _load_in_subprocess(settings: Settings, day: dt.date, **env: str) -> subprocess.Popen[bytes]:
    code = (
        "import datetime, sys; from fdp.config import Settings; from fdp import pipeline;"
        f"pipeline.load(Settings(), datetime.date.fromisoformat({day.isoformat()!r}))"
    )
    environment = {
        **os.environ,
        "FDP_DATA_DIR": settings.data_dir,
        "FDP_WAREHOUSE_URL": settings.warehouse_url,
        "FDP_WAREHOUSE_ATTEMPTS": str(settings.warehouse_attempts),
        "FDP_WAREHOUSE_RETRY_BASE_S": str(settings.warehouse_retry_base_s),
        **env,
    }
    return subprocess.Popen([sys.executable, "-c", code], env=environment, stderr=subprocess.PIPE)


def test_killed_load_keeps_previous_rows_and_rerun_matches(
    wh_settings: Settings, tmp_path: Path
) -> None:
    old = make_rows(["AAA", "BBB"], DAYS, seed=4)
    new = make_rows(["AAA", "BBB"], DAYS[1:], seed=5, processed=2)
    write_run(wh_settings, D1, old)
    load_run(wh_settings, D1)
    write_run(wh_settings, D3, new)

    killed = _load_in_subprocess(wh_settings, D3, **{FAULT_ENV: "after_delete"})
    _, err = killed.communicate(timeout=120)
    assert killed.returncode == -9, err.decode()
    assert_frame_equal(fact_rows(wh_settings.warehouse_url, wh_settings), expected(old))

    load_run(wh_settings, D3)
    assert_frame_equal(fact_rows(wh_settings.warehouse_url, wh_settings), expected(old, new))


def test_concurrent_loads_of_different_dates_both_land(wh_settings: Settings) -> None:
    a = make_rows(["AAA", "BBB"], DAYS[:2], seed=6)
    b = make_rows(["AAA", "BBB"], DAYS[3:], seed=7)
    write_run(wh_settings, D1, a)
    write_run(wh_settings, D3, b)
    migrate(connect(wh_settings.warehouse_url, wh_settings))
    procs = [_load_in_subprocess(wh_settings, d) for d in (D1, D3)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    assert_frame_equal(fact_rows(wh_settings.warehouse_url, wh_settings), expected(a, b))
    runs = connect(wh_settings.warehouse_url, wh_settings).query(
        "SELECT run_date, status, rows_out FROM pipeline_runs ORDER BY run_date"
    )
    assert runs.to_pylist() == [
        {"run_date": D1, "status": "success", "rows_out": 4},
        {"run_date": D3, "status": "success", "rows_out": 4},
    ]


@pytest.mark.postgres
def test_refused_connection_is_transient_names_host_not_password(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://fdp_user:s3cr3t-pw@127.0.0.1:{port}/warehouse"
    settings = Settings(
        data_dir=str(tmp_path),
        warehouse_url=url,
        warehouse_attempts=3,
        warehouse_retry_base_s=0.2,
    )
    start = time.perf_counter()
    with pytest.raises(TransientError) as caught:
        migrate(connect(url, settings))
    assert time.perf_counter() - start >= 0.2 + 0.4  # two backoff sleeps between three tries
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert "s3cr3t-pw" not in message
    assert "s3cr3t-pw" not in repr(caught.value.__cause__)


def test_unknown_warehouse_scheme_is_a_config_error_without_password() -> None:
    with pytest.raises(TerminalError, match=r"mysql://u:\*\*\*@h/db") as caught:
        connect("mysql://u:pw123@h/db")
    assert "pw123" not in str(caught.value)


def test_a_key_twice_in_the_batch_fails_and_keeps_the_previous_rows(
    wh_settings: Settings,
) -> None:
    from fdp.records import EnrichedStockRecord, Frame
    from fdp.warehouse import load_rows

    old = make_rows(["AAA"], DAYS[:2], seed=10)
    write_run(wh_settings, D1, old)
    load_run(wh_settings, D1)
    twice = pl.concat([make_rows(["AAA"], DAYS[1:2], seed=11)] * 2)
    warehouse = connect(wh_settings.warehouse_url, wh_settings)
    with pytest.raises(TerminalError, match=r"AAA.*2024-01-30|2024-01-30.*AAA"):
        load_rows(warehouse, Frame(EnrichedStockRecord, twice), "batch X")
    assert_frame_equal(fact_rows(wh_settings.warehouse_url, wh_settings), expected(old))


def test_cli_load_then_query_on_the_embedded_warehouse(settings: Settings) -> None:
    from click.testing import CliRunner

    from fdp.cli import main

    write_run(settings, D1, make_rows(["AAA", "BBB"], DAYS[:3], seed=12))
    runner = CliRunner()
    loaded = runner.invoke(main, ["load", "--start", "2024-01-01", "--end", "2024-02-29"])
    assert loaded.exit_code == 0, loaded.output
    assert "loaded 6 rows of run 2024-01-31" in loaded.output
    shown = runner.invoke(
        main, ["query", "SELECT symbol, COUNT(*) AS n FROM fact_stock_prices GROUP BY 1 ORDER BY 1"]
    )
    assert shown.exit_code == 0, shown.output
    assert "AAA" in shown.output
    assert "BBB" in shown.output
    bad = runner.invoke(main, ["load", "--date", "2024-01-31", "--start", "2024-01-01"])
    assert bad.exit_code == 2
    missing = runner.invoke(main, ["load", "--date", "2024-03-01"])
    assert missing.exit_code == 2
    assert "2024-03-01" in missing.output


def test_a_run_read_in_many_slices_loads_whole_and_names_a_key_missing_late(
    wh_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slices of two months stream into one load. A manifest key missing from the last
    slice's months fails the load, named, after the earlier slices were written: the
    transaction leaves nothing behind. With the manifest right, the run loads whole."""
    from fdp import lake
    from fdp.warehouse import loader
    from fdp.warehouse.loader import reconcile_run
    from fdp.warehouse.reconcile import ReconciliationError

    monkeypatch.setattr(loader, "SLICE_ROWS", 4)
    days = [dt.date(2024, month, 2) for month in range(1, 7)]
    rows = make_rows(["AAA", "BBB"], days, seed=50)
    write_run(wh_settings, D1, rows)
    assert len(list(loader.lake_batch(wh_settings, D1).slices())) == 3
    gone = pl.DataFrame({"symbol": ["CCC"], "trade_date": [dt.date(2024, 6, 3)]})
    lake.write_changes(wh_settings, D1, pl.concat([rows.select(gone.columns), gone]).sort("symbol"))
    with pytest.raises(ReconciliationError, match=r"missing in lake 1: CCC 2024-06-03"):
        load_run(wh_settings, D1)
    assert fact_rows(wh_settings.warehouse_url, wh_settings).is_empty()

    lake.write_changes(wh_settings, D1, rows)
    load_run(wh_settings, D1)
    assert reconcile_run(wh_settings, D1) == rows.height
    assert_frame_equal(fact_rows(wh_settings.warehouse_url, wh_settings), expected(rows))
