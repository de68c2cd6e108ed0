"""The end-to-end commands: ``fdp run``, ``fdp backfill`` (resumable) and a failed gate."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import orjson
import polars as pl
import pytest
from click.testing import CliRunner

from fdp import lake
from fdp.calendar import sessions
from fdp.cli import main
from fdp.config import Settings

pytestmark = pytest.mark.slow

START, END = dt.date(2024, 3, 4), dt.date(2024, 3, 12)
SYMBOLS = "AAPL,MSFT"
BACKFILL = (
    "backfill",
    "--start",
    START.isoformat(),
    "--end",
    END.isoformat(),
    "--symbols",
    SYMBOLS,
)


def _invoke(data: Path, *args: str) -> str:
    result = CliRunner().invoke(main, list(args), env={"FDP_DATA_DIR": str(data)})
    assert result.exit_code == 0, result.output
    return result.output


def _facts(settings: Settings) -> pl.DataFrame:
    """Warehouse rows without the run-time column (two data dirs run at different times)."""
    path = settings.warehouse_url.removeprefix("duckdb:///")
    with duckdb.connect(path, read_only=True) as con:
        table = con.sql("SELECT * FROM fact_stock_prices ORDER BY symbol, trade_date").arrow()
    return pl.DataFrame(table).drop("processing_timestamp")


def _lake_files(settings: Settings) -> dict[str, bytes]:
    root = Path(settings.path("curated"))
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_backfill_equals_run_day_by_day_and_resumes(tmp_path: Path) -> None:
    daily, bulk = tmp_path / "daily", tmp_path / "bulk"
    days = sessions(START, END)
    for day in days:
        _invoke(daily, "run", "--date", day.isoformat(), "--symbols", SYMBOLS)
    out = _invoke(bulk, *BACKFILL)
    assert f"{len(days)} session(s) run, 0 already complete" in out

    by_day, backfilled = _facts(Settings(data_dir=str(daily))), _facts(Settings(data_dir=str(bulk)))
    assert backfilled.height == 2 * len(days)
    assert backfilled.equals(by_day)

    before = _lake_files(Settings(data_dir=str(bulk)))
    again = _invoke(bulk, *BACKFILL)
    assert f"0 session(s) run, {len(days)} already complete" in again
    forced = _invoke(bulk, *BACKFILL, "--force")
    assert f"{len(days)} session(s) run, 0 already complete" in forced
    assert _lake_files(Settings(data_dir=str(bulk))) == before
    assert _facts(Settings(data_dir=str(bulk))).equals(backfilled)


def _plant_bad_batch(settings: Settings, day: dt.date) -> None:
    """A vendor-shaped object whose every bar has high < low: the gate must stop the run."""
    series = {
        day.isoformat(): {
            "1. open": "10.0",
            "2. high": "9.0",
            "3. low": "11.0",
            "4. close": "10.0",
            "5. adjusted close": "10.0",
            "6. volume": "100",
            "7. dividend amount": "0.0",
            "8. split coefficient": "1.0",
        }
    }
    doc = {"Meta Data": {"2. Symbol": "BADX"}, "Time Series (Daily)": series}
    path = Path(settings.path("raw", "source=simulator", f"ingest_date={day}", "symbol=BADX.json"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(doc))


def test_a_failed_gate_stops_the_run_before_the_lake_and_the_warehouse(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = Settings(data_dir=str(data))
    first, second = sessions(START, END)[:2]
    _invoke(data, "run", "--date", first.isoformat(), "--symbols", SYMBOLS)
    lake_before, facts_before = _lake_files(settings), _facts(settings)

    _plant_bad_batch(settings, second)
    result = CliRunner().invoke(
        main,
        ["run", "--date", second.isoformat(), "--symbols", SYMBOLS],
        env={"FDP_DATA_DIR": str(data)},
    )
    assert result.exit_code == 1, result.output
    assert "high" in result.output
    assert "BADX" in result.output
    assert _lake_files(settings) == lake_before
    assert _facts(settings).equals(facts_before)
    assert not Path(lake.changes_url(settings, second)).exists()
