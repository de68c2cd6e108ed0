"""The stress preset (8 symbols x 365 sessions) through the whole pipeline on PostgreSQL.

One batch the size of the seed's CI stress test goes through ingest, the full quality suite,
the transform and a PostgreSQL load with reconciliation; then the curated rows are checked
for OHLC integrity and the simulated returns for the GBM law they were drawn from.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from scipy import stats

from fdp import lake, pipeline
from fdp.calendar import next_sessions, sessions
from fdp.config import Settings
from fdp.sources.symbols import preset, symbol_parameters

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.stress]

DT = 1 / 252
CONFIDENCE = 0.999


@pytest.fixture(scope="module")
def stress_run(
    tmp_path_factory: pytest.TempPathFactory, pg_database: str
) -> tuple[Settings, list[pipeline.TaskResult], pl.DataFrame]:
    p = preset("stress")
    days = next_sessions(p.start, p.sessions)
    settings = Settings(
        data_dir=str(tmp_path_factory.mktemp("stress") / "data"), warehouse_url=pg_database
    )
    results = [pipeline.generate(settings, days[-1], start=days[0], preset="stress")]
    results += pipeline.run(settings, days[-1], skip_ingest=True)
    return settings, results, lake.scan(settings).collect()


def test_every_stage_ran_and_nothing_was_rejected(
    stress_run: tuple[Settings, list[pipeline.TaskResult], pl.DataFrame],
) -> None:
    _, results, curated = stress_run
    p = preset("stress")
    assert [r.stage for r in results] == list(pipeline.STAGES)
    assert curated.height == len(p.symbols) * p.sessions == 8 * 365
    by_stage = {r.stage: r for r in results}
    assert by_stage["validate"].rows_rejected == 0
    assert by_stage["validate"].details["rules"] >= 17
    assert by_stage["reconcile"].rows_out == curated.height


def test_warehouse_holds_exactly_the_lake(
    stress_run: tuple[Settings, list[pipeline.TaskResult], pl.DataFrame],
) -> None:
    import psycopg

    settings, _, curated = stress_run
    with psycopg.connect(settings.warehouse_url) as con:
        count, keys, closes = con.execute(
            "SELECT COUNT(*), COUNT(DISTINCT (symbol, trade_date)), SUM(close)"
            " FROM fact_stock_prices"
        ).fetchone() or (0, 0, 0)
    assert count == keys == curated.height
    assert math.isclose(float(closes), curated["close"].sum(), rel_tol=1e-12)


def test_ohlc_integrity_and_sessions(
    stress_run: tuple[Settings, list[pipeline.TaskResult], pl.DataFrame],
) -> None:
    _, _, curated = stress_run
    broken = curated.filter(
        (pl.col("low") > pl.min_horizontal("open", "close"))
        | (pl.max_horizontal("open", "close") > pl.col("high"))
        | (pl.col("low") <= 0)
        | (pl.col("volume") < 0)
    )
    assert broken.is_empty(), broken.head()
    first, last = curated["trade_date"].min(), curated["trade_date"].max()
    assert isinstance(first, dt.date)
    assert isinstance(last, dt.date)
    assert set(curated["trade_date"].unique()) == set(sessions(first, last))


def test_total_returns_follow_the_gbm_law(
    stress_run: tuple[Settings, list[pipeline.TaskResult], pl.DataFrame],
) -> None:
    """Adjusted-close log returns ~ N((mu - sigma^2/2) dt, sigma^2 dt), at 99.9% per symbol."""
    _, _, curated = stress_run
    z = stats.norm.ppf(0.5 + CONFIDENCE / 2)
    for symbol, rows in curated.sort("trade_date").group_by("symbol"):
        params = symbol_parameters(str(symbol[0]))
        r = np.diff(np.log(rows["adjusted_close"].to_numpy()))
        n, mean, var = r.size, r.mean(), r.var(ddof=1)
        want_mean, want_var = (params.mu - params.sigma**2 / 2) * DT, params.sigma**2 * DT
        assert abs(mean - want_mean) < z * math.sqrt(want_var / n), (symbol, mean, want_mean)
        lo, hi = stats.chi2.ppf([(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2], n - 1)
        assert lo < (n - 1) * var / want_var < hi, (symbol, var, want_var)
