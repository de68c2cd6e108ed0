"""End to end in a real Airflow (``dag.test()``, no scheduler): simulator, Polars, PostgreSQL."""

from __future__ import annotations

import datetime as dt
import inspect
from pathlib import Path
from typing import Any

import orjson
import pytest

from fdp.config import Settings

pytestmark = [
    pytest.mark.airflow,
    pytest.mark.postgres,
    pytest.mark.slow,
    # Airflow 3.3's in-process execution API imports starlette's test client, which warns.
    pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`"),
]

FIRST, SECOND, BROKEN = dt.date(2024, 12, 23), dt.date(2024, 12, 24), dt.date(2024, 12, 26)
SYMBOLS = ("AAPL", "MSFT")


def _run(dag: Any, day: dt.date, warehouse: str) -> tuple[str, dict[str, str]]:
    """One DAG run for session ``day``: the run's state and each task's."""
    from fdp.orchestration.timetable import ExchangeSessionTimetable

    conf = {
        "source": "simulator",
        "engine": "polars",
        "warehouse": warehouse,
        "symbols": ",".join(SYMBOLS),
    }
    logical = ExchangeSessionTimetable().interval(day).start
    parameters = inspect.signature(dag.test).parameters
    name = "logical_date" if "logical_date" in parameters else "execution_date"  # Airflow 2.10
    run = dag.test(**{name: logical}, run_conf=conf)
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    return str(run.state), states


def _fact_rows(warehouse: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(warehouse) as con:
        return con.execute("SELECT * FROM fact_stock_prices ORDER BY price_id").fetchall()


def _bad_vendor_document(symbol: str, day: dt.date) -> bytes:
    """A parseable bar that breaks the gate's price rules (negative prices, high < low)."""
    bar = {
        "1. open": "-5.0",
        "2. high": "1.0",
        "3. low": "10.0",
        "4. close": "-3.0",
        "5. adjusted close": "-3.0",
        "6. volume": "100",
        "7. dividend amount": "0.0000",
        "8. split coefficient": "1.0",
    }
    meta = {"2. Symbol": symbol, "3. Last Refreshed": day.isoformat()}
    return orjson.dumps({"Meta Data": meta, "Time Series (Daily)": {day.isoformat(): bar}})


def test_two_sessions_a_rerun_and_a_broken_gate(
    dag: Any, warehouse_db: str, airflow_home: Path
) -> None:
    from fdp import lake
    from fdp.sources.landing import RawZone

    state, tasks = _run(dag, FIRST, warehouse_db)
    assert state == "success", tasks
    state, tasks = _run(dag, SECOND, warehouse_db)
    assert state == "success", tasks
    assert set(tasks.values()) == {"success"}

    rows = _fact_rows(warehouse_db)
    keys = sorted(f"{s}_{d:%Y%m%d}" for s in SYMBOLS for d in (FIRST, SECOND))
    assert sorted(r[0] for r in rows) == keys

    state, tasks = _run(dag, FIRST, warehouse_db)
    assert state == "success", tasks
    assert _fact_rows(warehouse_db) == rows

    # A crafted bad object for the broken session, under a symbol the run's ingest does not
    # write, so the real ingest leaves it in place and the gate sees it.
    settings = Settings()
    RawZone(settings).land(
        "simulator", BROKEN, "BADX", _bad_vendor_document("BADX", BROKEN), rows=1
    )
    state, tasks = _run(dag, BROKEN, warehouse_db)
    assert state == "failed"
    assert tasks["ingest"] == "success"
    assert tasks["validate"] == "failed"
    for never_ran in ("transform", "load", "reconcile", "notify"):
        assert tasks[never_ran] == "upstream_failed", tasks
    manifest = lake.changes_url(settings, BROKEN)
    assert not Path(manifest).exists()
    assert _fact_rows(warehouse_db) == rows
