"""The indicators against TA-Lib (an implementation fdp shares no code with) and the plain-Python
oracle, on random series with splits, flat stretches, zero volumes and short histories, and on
real S&P 500 bars (1999-2018, shipped in the ``arch`` package).

TA-Lib works on the as-traded series it is given, so it gets the split-adjusted prices; it has no
notion of a missing value, so the series here have none (the oracle covers gaps). Conventions
where fdp differs on purpose: RSI on a flat window is null here (0/0), 0 in TA-Lib; MACD is
ema_12 - ema_26 here, while TA-Lib seeds its fast EMA at the slow one's first row, so the two
agree only once that seed has decayed (checked from row 200)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
import talib

from fdp import indicators
from fdp.records import CleansedRecord, EnrichedStockRecord, Frame
from fdp.transform import kernel
from indicator_oracle import Bar
from indicator_oracle import indicators as oracle

NOW = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def cleansed(symbol: str, bars: pl.DataFrame) -> Frame[CleansedRecord]:
    n = bars.height
    df = bars.with_columns(
        pl.lit(symbol).alias("symbol"),
        pl.date_range(
            dt.date(2000, 1, 1), dt.date(2000, 1, 1) + dt.timedelta(days=n - 1), eager=True
        ).alias("trade_date"),
        pl.col("close").alias("adjusted_close"),
        pl.lit(0.0).alias("dividend_amount"),
        pl.lit("test").alias("source_file"),
        pl.lit(dt.date(2024, 1, 1)).alias("ingest_date"),
    )
    return Frame(CleansedRecord, df.select(CleansedRecord.names()))


def random_series(seed: int) -> pl.DataFrame:
    """A random walk with rare splits, a flat stretch, zero volumes, any length from 1 to 400."""
    rng = np.random.default_rng(seed)
    n = int(rng.choice([1, 5, 13, 14, 15, 20, 26, 34, 60, 400]))
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    if n > 40:
        close[10:35] = close[10]  # flat: RSI 0/0, zero deviation, zero true range
    split = np.where(rng.random(n) < 0.01, rng.choice([2.0, 3.0, 0.5], n), 1.0)
    split[0] = 1.0
    close = close / np.cumprod(split)  # as traded: the price falls by the split at its row
    high = close * (1 + rng.uniform(0, 0.03, n))
    low = close * (1 - rng.uniform(0, 0.03, n))
    high[10 : 35 if n > 40 else 0] = low[10 : 35 if n > 40 else 0] = close[10 : 35 if n > 40 else 0]
    volume = np.where(rng.random(n) < 0.05, 0, rng.integers(1, 10**7, n))
    return pl.DataFrame(
        {
            "open": close,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume.astype(np.int64),
            "split_coefficient": split,
        }
    )


def enriched(bars: pl.DataFrame) -> pl.DataFrame:
    frame = kernel.enrich(cleansed("X", bars), Frame.empty(EnrichedStockRecord), processed_at=NOW)
    return frame.df


def assert_matches(
    ours: pl.Series, reference: np.ndarray, what: str, *, rel: float = 1e-9, scale: float = 1.0
) -> None:
    """Ours null exactly where TA-Lib gives NaN (its warm-up), else equal within ``rel``
    (relative, or absolute on ``scale``: a deviation of 0 has no relative error)."""
    got = ours.to_numpy()
    assert len(got) == len(reference)
    for t, (a, b) in enumerate(zip(got, reference, strict=True)):
        if math.isnan(b):
            assert a is None or math.isnan(a), f"{what} row {t + 1}: {a}, TA-Lib has none yet"
        else:
            assert a is not None, f"{what} row {t + 1}: null, TA-Lib {b}"
            assert not math.isnan(a), f"{what} row {t + 1}: NaN, TA-Lib {b}"
            assert math.isclose(a, b, rel_tol=rel, abs_tol=rel * scale), (
                f"{what} row {t + 1}: {a} != {b}"
            )


def check_against_talib(bars: pl.DataFrame) -> None:
    out = enriched(bars)
    p = out[indicators.P].to_numpy()
    factor = out["close"].to_numpy() / p
    high, low = out["high"].to_numpy() / factor, out["low"].to_numpy() / factor
    scale = float(np.max(np.abs(p)))
    for n in (5, 20, 50):
        assert_matches(out[f"sma_{n}"], talib.SMA(p, n), f"sma_{n}")
    for n in (12, 26):
        assert_matches(out[f"ema_{n}"], talib.EMA(p, n), f"ema_{n}")
    rsi = talib.RSI(p, 14)
    flat = ((out["rsi_14_avg_gain"] + out["rsi_14_avg_loss"]) == 0).fill_null(False)
    assert_matches(out["rsi_14"].filter(~flat), rsi[~flat.to_numpy()], "rsi_14", rel=1e-8)
    assert out["rsi_14"].filter(flat).is_null().all(), "RSI over a flat window is 0/0"
    assert (rsi[flat.to_numpy()] == 0).all()  # TA-Lib's convention, which fdp does not follow
    assert_matches(out["atr_14"], talib.ATR(high, low, p, 14), "atr_14", rel=1e-9, scale=scale)
    upper, _, lower = talib.BBANDS(p, 20, 2.0, 2.0, 0)
    assert_matches(out["bb_upper_20"], upper, "bb_upper_20", rel=1e-9, scale=scale)
    assert_matches(out["bb_lower_20"], lower, "bb_lower_20", rel=1e-9, scale=scale)
    macd, signal, hist = talib.MACD(p, 12, 26, 9)
    settled = slice(200, None)
    for column, reference in (("macd", macd), ("macd_signal", signal), ("macd_hist", hist)):
        assert_matches(out[column][settled], reference[settled], column, rel=1e-9, scale=scale)


@pytest.mark.parametrize("seed", range(40))
def test_random_series_match_talib(seed: int) -> None:
    check_against_talib(random_series(seed))


@pytest.mark.parametrize("seed", range(40))
def test_random_series_match_the_oracle(seed: int) -> None:
    bars = random_series(seed)
    out = enriched(bars)
    rows = oracle(
        [
            Bar(r["close"], r["high"], r["low"], r["volume"], r["split_coefficient"])
            for r in bars.iter_rows(named=True)
        ]
    )
    scale = max(abs(out[indicators.P].max() or 1.0), 1.0)
    for column in indicators.computed_columns():
        got, want = out[column].to_list(), [row[column] for row in rows]
        for t, (a, b) in enumerate(zip(got, want, strict=True)):
            where = f"{column} row {t + 1}"
            assert (a is None) == (b is None), f"{where}: {a} != {b}"
            if a is not None:
                assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9 * scale), (
                    f"{where}: {a} != {b}"
                )


def sp500() -> pl.DataFrame:
    from arch.data import sp500 as data

    frame = pl.from_pandas(data.load().reset_index())
    return frame.select(
        pl.col("Open").alias("open"),
        pl.col("High").alias("high"),
        pl.col("Low").alias("low"),
        pl.col("Close").alias("close"),
        pl.col("Volume").cast(pl.Int64).alias("volume"),
        pl.lit(1.0).alias("split_coefficient"),
    )


def test_real_sp500_bars_match_talib() -> None:
    bars = sp500()
    assert bars.height > 5000
    check_against_talib(bars)


def test_real_sp500_bars_continue_exactly_from_stored_state() -> None:
    """Every new indicator's recursion carries over an incremental run: from any cut, the
    rows computed from the stored state equal the full computation's."""
    bars = cleansed("SPX", sp500())
    full = kernel.enrich(bars, Frame.empty(EnrichedStockRecord), processed_at=NOW).df
    for cut in (1, 14, 15, 33, 34, 50, 1000, 4999):
        state = full.head(cut).tail(indicators.state_rows())
        part = kernel.enrich(
            Frame(CleansedRecord, bars.df.slice(cut)),
            Frame(EnrichedStockRecord, state),
            processed_at=NOW,
        ).df
        for column in indicators.computed_columns():
            a, b = part[column], full[column].slice(cut)
            assert (a.is_null() == b.is_null()).all(), f"cut {cut} {column}: nulls differ"
            diff = ((a - b).abs() / b.abs().clip(lower_bound=1e-300)).max()
            assert diff is None or diff <= 1e-12, f"cut {cut} {column}: {diff}"  # type: ignore[operator]


def test_a_constant_price_has_no_rsi_and_no_band_width() -> None:
    flat = pl.DataFrame(
        {
            "open": [10.0] * 60,
            "high": [10.0] * 60,
            "low": [10.0] * 60,
            "close": [10.0] * 60,
            "volume": [0] * 60,
            "split_coefficient": [1.0] * 60,
        }
    )
    out = enriched(flat)
    assert out["rsi_14"].is_null().all()  # 0 / 0: no move either way
    assert out["rsi_14_avg_gain"].drop_nulls().to_list() == [0.0] * 46
    assert out["atr_14"].drop_nulls().to_list() == [0.0] * 46
    width = (out["bb_upper_20"] - out["bb_lower_20"]).drop_nulls()
    assert width.len() == 41
    assert width.abs().max() < 1e-12  # type: ignore[operator]
    assert out["volume_change_pct"].is_null().all()  # 0 / 0 volumes
