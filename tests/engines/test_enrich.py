"""The kernel's indicators against the plain-Python oracle, the split case and incremental state."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bars import cleansed_frame
from fdp import indicators
from fdp.records import CleansedRecord, EnrichedStockRecord, Frame
from fdp.transform import kernel
from fdp.transform.plan import enrich_in_slices
from indicator_oracle import Bar
from indicator_oracle import indicators as oracle

COLUMNS = indicators.computed_columns()
STATE_ROWS = indicators.state_rows()

NOW = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
START = dt.date(2020, 1, 1)

prices = st.one_of(
    st.floats(1.0, 500.0),
    st.just(0.0),
    st.none(),
)
bar = st.builds(
    Bar,
    close=prices,
    high=st.floats(1.0, 600.0),
    low=st.floats(0.5, 1.0),
    volume=st.one_of(st.just(0), st.integers(1, 10**7)),
    split=st.sampled_from([1.0] * 12 + [2.0, 0.5, 3.0]),
)
series = st.lists(bar, min_size=0, max_size=90)


def frame(symbols: dict[str, list[Bar]]) -> Frame[CleansedRecord]:
    return Frame(CleansedRecord, cleansed_frame(symbols, START))


def assert_close(actual: float | None, expected: float | None, where: str) -> None:
    if expected is None or actual is None:
        assert (actual, expected) == (None, None), f"{where}: {actual} != {expected}"
        return
    assert math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-9), (
        f"{where}: {actual} != {expected}"
    )


def check_against_oracle(out: pl.DataFrame, symbols: dict[str, list[Bar]]) -> None:
    for symbol, bars in symbols.items():
        got = out.filter(pl.col("symbol") == symbol).sort("trade_date").to_dicts()
        assert len(got) == len(bars)
        for t, (row, want) in enumerate(zip(got, oracle(bars), strict=True)):
            for column in COLUMNS:
                assert_close(row[column], want[column], f"{symbol} row {t + 1} {column}")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a=series, b=series)
def test_every_indicator_matches_the_oracle(a: list[Bar], b: list[Bar]) -> None:
    symbols = {"AAA": a, "BBB": b}
    out = kernel.enrich(frame(symbols), Frame.empty(EnrichedStockRecord), processed_at=NOW)
    check_against_oracle(out.df, symbols)


def test_long_series_without_gaps_matches_the_oracle() -> None:
    bars = [Bar(100 + 10 * math.sin(i / 7), 120.0, 90.0, 1000 + i, 1.0) for i in range(120)]
    out = kernel.enrich(frame({"X": bars}), Frame.empty(EnrichedStockRecord), processed_at=NOW)
    check_against_oracle(out.df, {"X": bars})
    first = {c: out.df[c].is_not_null().arg_max() for c in COLUMNS}
    assert first["sma_50"] == 49
    assert first["ema_26"] == 25
    assert first["volatility_20d"] == 20


def test_a_two_for_one_split_is_not_a_fifty_percent_fall() -> None:
    closes = [100.0 + i for i in range(60)] + [(160.0 + i) / 2 for i in range(40)]
    splits = [1.0] * 60 + [2.0] + [1.0] * 39
    bars = [Bar(c, c, c, 1000, s) for c, s in zip(closes, splits, strict=True)]
    out = kernel.enrich(frame({"X": bars}), Frame.empty(EnrichedStockRecord), processed_at=NOW).df
    split_day = out.row(60, named=True)
    assert abs(split_day["daily_return"] - 100 * (160 / 159 - 1)) < 1e-9
    assert split_day["volume_change_pct"] == -50.0
    p = out["split_adjusted_close"]
    assert p[59] == 159 / 2
    assert p[60] == 80.0
    for column in ("sma_5", "sma_20", "sma_50", "ema_12", "ema_26"):
        jumps = out[column].diff().abs().drop_nulls()
        assert jumps.max() < 1.0, column
    check_against_oracle(out, {"X": bars})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    bars=st.lists(bar.filter(lambda b: b.split == 1.0), min_size=1, max_size=120), data=st.data()
)
def test_continuing_from_state_equals_a_full_computation(
    bars: list[Bar], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(bars) - 1))
    whole = frame({"X": bars})
    full = kernel.enrich(whole, Frame.empty(EnrichedStockRecord), processed_at=NOW).df
    state = full.head(cut).tail(STATE_ROWS)
    tail = Frame(CleansedRecord, whole.df.slice(cut))
    part = kernel.enrich(tail, Frame(EnrichedStockRecord, state), processed_at=NOW).df
    expected = full.slice(cut)
    for column in COLUMNS:
        for t, (got, want) in enumerate(zip(part[column], expected[column], strict=True)):
            assert_close(got, want, f"row {cut + t + 1} {column}")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    symbols=st.dictionaries(
        st.sampled_from(["A", "B", "C", "D", "E"]),
        st.lists(bar.filter(lambda b: b.split == 1.0), min_size=0, max_size=70),
        min_size=1,
    ),
    slice_rows=st.integers(1, 150),
    cut=st.integers(0, 69),
)
def test_slices_of_whole_symbols_match_the_oracle(
    symbols: dict[str, list[Bar]], slice_rows: int, cut: int
) -> None:
    def enrich(bars: Frame[CleansedRecord], state: Frame[EnrichedStockRecord]) -> pl.DataFrame:
        slices = enrich_in_slices(bars, state, processed_at=NOW, slice_rows=slice_rows)
        return pl.concat([s.df for s in slices])

    whole = frame(symbols)
    full = enrich(whole, Frame.empty(EnrichedStockRecord))
    check_against_oracle(full, symbols)
    # Continuing from state rows, the slices still see each symbol's own state only.
    recent = pl.col("trade_date") >= START + dt.timedelta(days=cut)
    state = full.filter(~recent).group_by("symbol", maintain_order=True).tail(STATE_ROWS)
    tail = Frame(CleansedRecord, whole.df.filter(recent))
    part = enrich(tail, Frame(EnrichedStockRecord, state))
    expected = full.filter(recent)
    assert part["price_id"].to_list() == expected["price_id"].to_list()
    for column in COLUMNS:
        for t, (got, want) in enumerate(zip(part[column], expected[column], strict=True)):
            assert_close(got, want, f"row {t} {column}")
