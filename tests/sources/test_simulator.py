"""The GBM simulator: its statistics, invariants, reproducibility and landed output.

Reference values come from the definitions (GBM moments, the NYSE holiday list, the vendor's
back-adjustment rule), never from the simulator's own code.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from scipy import stats

from fdp.calendar import sessions
from fdp.config import Settings
from fdp.errors import ConfigError
from fdp.sources.landing import RawZone
from fdp.sources.simulator import land_simulated, simulate, window
from fdp.sources.symbols import ParamFile, SymbolParams, symbol_parameters
from nyse_reference import HOLIDAYS_2024

DT = 1 / 252
Z999 = stats.norm.ppf(0.9995)  # two-sided 99.9%


def _params(**fields: float) -> ParamFile:
    """The same parameters for many synthetic tickers: independent samples of one law."""
    tickers = [f"T{i:03d}" for i in range(40)]
    return ParamFile(
        {t: dataclasses.replace(symbol_parameters(t), **fields) for t in tickers}, None, ()
    )


def _log_returns(bars: pl.DataFrame, column: str = "adjusted_close") -> np.ndarray:
    out = bars.select(pl.col(column).log().diff().over("symbol").alias("r")).drop_nulls()
    return out["r"].to_numpy()


@pytest.mark.parametrize(("mu", "sigma"), [(0.08, 0.30), (-0.25, 0.6), (0.3, 0.12)])
def test_close_to_close_log_returns_have_the_gbm_mean_and_variance(mu: float, sigma: float) -> None:
    params = _params(mu=mu, sigma=sigma, split_probability=0.2, dividend_yield=0.03)
    bars = simulate(start=dt.date(2021, 1, 4), end=dt.date(2024, 12, 31), params=params)
    r = _log_returns(bars)
    n = len(r)
    mean, var = (mu - sigma**2 / 2) * DT, sigma**2 * DT
    assert abs(r.mean() - mean) < Z999 * math.sqrt(var / n)
    chi = (n - 1) * r.var(ddof=1) / var
    assert stats.chi2.ppf(0.0005, n - 1) < chi < stats.chi2.ppf(0.9995, n - 1)
    z = (r - mean) / math.sqrt(var)
    assert stats.normaltest(z).pvalue > 0.001
    assert stats.kstest(z, "norm").pvalue > 0.001


def test_a_market_factor_and_a_matrix_give_the_requested_correlation() -> None:
    start, end = dt.date(2016, 1, 4), dt.date(2023, 12, 29)
    base = {
        s: dataclasses.replace(symbol_parameters(s), beta=b)
        for s, b in [("AAA", 0.8), ("BBB", 0.5)]
    }
    market = simulate(start=start, end=end, params=ParamFile(base, None, ()), correlation="market")
    matrix = np.array([[1.0, -0.6], [-0.6, 1.0]])
    chol = simulate(start=start, end=end, params=ParamFile(base, matrix, ("AAA", "BBB")))
    for bars, rho in ((market, 0.8 * 0.5), (chol, -0.6)):
        a, b = (_log_returns(bars.filter(pl.col("symbol") == s)) for s in ("AAA", "BBB"))
        r = np.corrcoef(a, b)[0, 1]
        assert abs(np.arctanh(r) - np.arctanh(rho)) < Z999 / math.sqrt(len(a) - 3), (r, rho)
    independent = simulate(["AAA", "BBB"], start=start, end=end)
    a, b = (_log_returns(independent.filter(pl.col("symbol") == s)) for s in ("AAA", "BBB"))
    assert abs(np.arctanh(np.corrcoef(a, b)[0, 1])) < Z999 / math.sqrt(len(a) - 3)


def test_volume_is_higher_on_days_with_large_moves() -> None:
    bars = simulate(["JPM", "TSLA"], start=dt.date(2018, 1, 2), end=dt.date(2023, 12, 29))
    moves = bars.with_columns(
        pl.col("adjusted_close").log().diff().abs().over("symbol").alias("move")
    ).drop_nulls()
    rho = stats.spearmanr(moves["move"], moves["volume"]).statistic
    assert rho > 0.1


def test_bars_fall_on_nyse_sessions_only() -> None:
    bars = simulate(["MSFT"], start=dt.date(2024, 1, 1), end=dt.date(2024, 12, 31))
    days = set(bars["trade_date"].to_list())
    assert len(days) == bars.height == 252
    assert not days & HOLIDAYS_2024
    assert all(d.weekday() < 5 for d in days)
    assert sorted(days) == sessions(dt.date(2024, 1, 1), dt.date(2024, 12, 31))


@st.composite
def _scenarios(draw: st.DrawFn) -> tuple[ParamFile, dt.date, dt.date, int]:
    symbol = draw(st.from_regex(r"[A-Z][A-Z0-9]{0,4}", fullmatch=True))
    params = dataclasses.replace(
        symbol_parameters(symbol),
        mu=draw(st.floats(-1.0, 1.0)),
        sigma=draw(st.floats(0.0, 2.0)),
        start_price=draw(st.floats(0.5, 5000.0)),
        split_probability=draw(st.floats(0.0, 1.0)),
        dividend_yield=draw(st.floats(0.0, 0.2)),
    )
    start = draw(st.dates(dt.date(2016, 1, 4), dt.date(2027, 6, 1)))
    end = start + dt.timedelta(days=draw(st.integers(0, 90)))
    return ParamFile({symbol: params}, None, ()), start, end, draw(st.integers(0, 2**63))


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_scenarios())
def test_every_bar_keeps_the_ohlc_invariants(
    scenario: tuple[ParamFile, dt.date, dt.date, int],
) -> None:
    params, start, end, seed = scenario
    bars = simulate(start=start, end=end, params=params, seed=seed)
    assert bars["trade_date"].to_list() == sessions(start, end)
    lo, hi = pl.min_horizontal("open", "close"), pl.max_horizontal("open", "close")
    broken = bars.filter(
        (pl.col("low") > lo) | (hi > pl.col("high")) | (pl.col("low") < 0) | (pl.col("volume") < 0)
    )
    assert broken.is_empty(), broken
    assert bars.select(pl.all().is_null().any()).row(0) == (False,) * bars.width


def test_the_same_seed_gives_the_same_path_whatever_else_is_generated() -> None:
    start, end = dt.date(2023, 3, 1), dt.date(2024, 6, 28)
    alone = simulate(["AAPL"], start=start, end=end, seed=7)
    crowd = simulate(["XYZ", "AAPL", "MSFT"], start=start, end=end, seed=7)
    assert alone.equals(crowd.filter(pl.col("symbol") == "AAPL"))
    assert alone.equals(simulate(["AAPL"], start=start, end=end, seed=7))
    other = simulate(["AAPL"], start=start, end=end, seed=8)
    assert not alone["close"].equals(other["close"])
    market = [
        simulate(s, start=start, end=end, seed=7, correlation="market")
        for s in (["AAPL"], ["JPM", "AAPL"])
    ]
    assert market[0].equals(market[1].filter(pl.col("symbol") == "AAPL"))


_AS_TRADED = [
    "trade_date",
    "symbol",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "dividend_amount",
    "split_coefficient",
]


@pytest.mark.parametrize(
    ("a", "b", "c"),
    [
        (dt.date(2024, 1, 2), dt.date(2024, 2, 15), dt.date(2024, 9, 30)),
        (dt.date(2023, 6, 1), dt.date(2023, 9, 1), dt.date(2024, 3, 1)),  # across the anchor
    ],
)
def test_continuing_a_run_equals_generating_it_at_once(a: dt.date, b: dt.date, c: dt.date) -> None:
    params = ParamFile(
        {"JPM": dataclasses.replace(symbol_parameters("JPM"), sigma=0.9, split_probability=1.0)},
        None,
        (),
    )
    whole = simulate(start=a, end=c, params=params)
    first = simulate(start=a, end=b, params=params)
    rest = simulate(start=b + dt.timedelta(days=1), end=c, params=params)
    assert pl.concat([first, rest]).select(_AS_TRADED).equals(whole.select(_AS_TRADED))
    assert rest.equals(whole.tail(rest.height))
    later = whole.filter(pl.col("trade_date") > b)
    assert (later["dividend_amount"] > 0).any(), "choose a window with an event after b"
    # The earlier part is re-adjusted for the events after b, as a vendor re-issues history.
    factor = first["close"][-1] / first["adjusted_close"][-1]
    ratio = whole.head(first.height)["adjusted_close"] * factor / first["adjusted_close"]
    assert np.allclose(ratio.to_numpy(), ratio[0], rtol=2e-6)


def test_the_anchor_session_closes_at_the_start_price() -> None:
    bars = simulate(["AAPL", "NVDA"], start=dt.date(2024, 1, 2), end=dt.date(2024, 1, 2))
    assert bars["close"].to_list() == [180.0, 500.0]


def test_adjusted_close_is_back_adjusted_for_splits_and_dividends() -> None:
    params = ParamFile(
        {
            "SPLT": dataclasses.replace(
                symbol_parameters("SPLT"), sigma=0.9, split_probability=1.0, dividend_yield=0.05
            )
        },
        None,
        (),
    )
    bars = simulate(start=dt.date(2022, 1, 3), end=dt.date(2025, 12, 31), params=params)
    close, adj = bars["close"].to_numpy(), bars["adjusted_close"].to_numpy()
    split, div = bars["split_coefficient"].to_numpy(), bars["dividend_amount"].to_numpy()
    assert (split != 1).sum() >= 3
    paid = bars.filter(pl.col("dividend_amount") > 0)["trade_date"]
    assert paid.len() == 16  # 16 quarters, one dividend each
    assert (paid.dt.year().cast(pl.Int32) * 4 + paid.dt.quarter().cast(pl.Int32)).n_unique() == 16
    # The vendor's rule: walk back from the last bar; a split divides earlier prices by its
    # ratio, a dividend multiplies them by 1 - dividend / previous close (in today's basis).
    # Published values carry 4 decimals, so each event adds at most ~1e-4 / close of error.
    expected, bound = np.empty_like(close), np.empty_like(close)
    factor, error = 1.0, 0.0
    for t in range(len(close) - 1, -1, -1):
        expected[t] = close[t] * factor
        bound[t] = error + 5e-5 / close[t] + 5e-5 / adj[t]
        if split[t] != 1 or div[t] > 0:
            factor *= (1.0 - div[t] / (close[t - 1] / split[t])) / split[t]
            error += 1e-4 / (close[t - 1] / split[t])
    assert np.all(np.abs(adj / expected - 1) <= bound)
    assert adj[-1] == close[-1]
    # As traded, a split day's open is about the previous close divided by the ratio.
    days = np.flatnonzero(split != 1)
    gaps = np.log(bars["open"].to_numpy()[days] * split[days] / close[days - 1])
    assert np.all(np.abs(gaps) < 0.2)


def test_landed_bars_parse_back_losslessly(settings: Settings, tmp_path: Path) -> None:
    start, end = dt.date(2024, 1, 2), dt.date(2024, 9, 30)
    params = ParamFile(
        {
            "SPLT": dataclasses.replace(
                symbol_parameters("SPLT"), sigma=1.5, split_probability=1.0
            ),
            "AAPL": symbol_parameters("AAPL"),
        },
        None,
        (),
    )
    expected = simulate(start=start, end=end, params=params).sort("symbol", "trade_date")
    assert (expected["split_coefficient"] != 1).any()
    assert (expected["dividend_amount"] > 0).any()
    param_file = tmp_path / "params.yaml"
    param_file.write_text("symbols:\n  SPLT: {sigma: 1.5, split_probability: 1}\n  AAPL: {}\n")
    zone = RawZone(settings)
    for fmt, ingest in (("json", dt.date(2024, 10, 1)), ("parquet", dt.date(2024, 10, 2))):
        summary = land_simulated(
            settings, start=start, end=end, ingest_date=ingest, fmt=fmt, params_file=param_file
        )
        assert summary.rows == expected.height
        got = zone.read_batch("simulator", ingest).df
        back = got.sort("symbol", "timestamp").select(
            pl.col("timestamp").str.to_date().alias("trade_date"), "symbol", *expected.columns[2:]
        )
        assert back.equals(expected), fmt
        assert (got["ingest_date"] == ingest).all()
    assert len(zone.json_objects("simulator", dt.date(2024, 10, 1))) == 2
    assert len(zone.parquet_objects("simulator", dt.date(2024, 10, 2))) == 1


def test_csv_export_and_an_empty_window(settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "bars.csv"
    summary = land_simulated(
        settings,
        start=dt.date(2024, 1, 2),
        end=dt.date(2024, 1, 31),
        ingest_date=dt.date(2024, 1, 31),
        symbols=["AAPL", "SYN1"],
        fmt="csv",
        output=out,
    )
    csv = pl.read_csv(out, try_parse_dates=True)
    assert csv.equals(
        simulate(["AAPL", "SYN1"], start=dt.date(2024, 1, 2), end=dt.date(2024, 1, 31))
    )
    assert summary.files == [str(out)]
    assert summary.rows == csv.height == 2 * 21
    saturday = dt.date(2024, 1, 6)
    empty = land_simulated(
        settings, start=saturday, end=saturday, ingest_date=saturday, fmt="parquet"
    )
    assert (empty.rows, empty.sessions, empty.files) == (0, 0, [])


def test_default_window_is_fixed_and_days_counts_sessions() -> None:
    assert window(preset_name=None, start=None, end=None, days=None) == (
        dt.date(2024, 1, 2),
        sessions(dt.date(2024, 1, 2), dt.date(2024, 12, 31))[60],
    )
    start, end = window(preset_name="large", start=dt.date(2024, 7, 1), end=None, days=10)
    assert len(sessions(start, end)) == 10
    start, end = window(preset_name=None, start=None, end=dt.date(2024, 7, 31), days=5)
    assert sessions(start, end) == sessions(dt.date(2024, 7, 25), dt.date(2024, 7, 31))
    with pytest.raises(ConfigError, match="-1"):
        window(preset_name=None, start=None, end=None, days=-1)


def test_derived_parameters_are_deterministic_and_valid() -> None:
    a, b = symbol_parameters("ZZZZ"), symbol_parameters("ZZZZ")
    assert a == b
    assert a != symbol_parameters("ZZZY")
    assert a.sigma > 0
    assert a.start_price > 0
    assert -1 <= a.beta <= 1
    assert symbol_parameters("AAPL") == SymbolParams(
        "AAPL", "Apple Inc.", "Technology", "NASDAQ", 180, 0.08, 0.30, 0.005, 0.04, 5.5e7, 0.75
    )
