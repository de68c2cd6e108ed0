"""Cleansing rules: every dropped row comes back with its rule and a reason naming the value."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import polars as pl
import pytest

from fdp.records import Frame, StockRecord
from fdp.transform import kernel
from fdp.transform.rules import RULES, CleanseRule

D1, D2 = dt.date(2024, 1, 2), dt.date(2024, 1, 3)
LATER = dt.date(2024, 1, 31)


def raw(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "symbol": "AAPL",
        "timestamp": "2024-01-02",
        "open": 1.0,
        "high": 2.0,
        "low": 0.5,
        "close": 1.5,
        "adjusted_close": 1.5,
        "volume": 10,
        "dividend_amount": 0.0,
        "split_coefficient": 1.0,
        "source_file": "f1",
        "ingest_date": D1,
    }
    return row | overrides


def cleanse(rows: list[dict[str, Any]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    df = pl.DataFrame(rows, schema=StockRecord.polars_schema())
    result = kernel.cleanse(Frame(StockRecord, df))
    return result.rows.df, result.rejected


def test_nulls_get_their_defaults_and_symbols_are_upper_cased() -> None:
    kept, rejected = cleanse(
        [raw(symbol="brk.b", volume=None, dividend_amount=None, split_coefficient=None)],
    )
    assert rejected.is_empty()
    row = kept.row(0, named=True)
    assert (row["symbol"], row["trade_date"], row["volume"]) == ("BRK.B", D1, 0)
    assert (row["dividend_amount"], row["split_coefficient"]) == (0.0, 1.0)


def test_bad_rows_are_rejected_with_a_reason() -> None:
    kept, rejected = cleanse(
        [
            raw(symbol="NOT A TICKER"),
            raw(timestamp="2024-02-30"),
            raw(close=-1.0),
            raw(volume=-5),
            raw(split_coefficient=0.0),
            raw(symbol="MSFT"),
        ],
    )
    assert kept["symbol"].to_list() == ["MSFT"]
    assert rejected["rule"].to_list() == [
        "symbol_pattern",
        "trade_date",
        "negative_close",
        "negative_volume",
        "split_coefficient",
    ]
    reasons = rejected["reason"].to_list()
    assert "NOT A TICKER" in reasons[0]
    assert "2024-02-30" in reasons[1]
    assert "-1.0" in reasons[2]
    assert rejected.columns == [*StockRecord.names(), "rule", "reason"]


def test_the_latest_ingest_wins_and_the_loser_is_kept_as_rejected() -> None:
    kept, rejected = cleanse(
        [raw(close=9.0, ingest_date=D2, source_file="f2"), raw(symbol="aapl", close=1.5)],
    )
    assert kept["close"].to_list() == [9.0]
    assert rejected["rule"].to_list() == ["duplicate_key"]
    assert rejected["source_file"].to_list() == ["f1"]


def test_non_finite_values_are_rejected_whatever_the_gate_did() -> None:
    """The second line of defence: a NaN or infinity in any float field rejects its row (a
    negative infinity is named as non-finite, not merely negative)."""
    hostile = {
        "open": math.nan,
        "high": math.inf,
        "low": -math.inf,
        "close": math.nan,
        "adjusted_close": -math.inf,
        "dividend_amount": math.inf,
        "split_coefficient": math.nan,
    }
    rows = [
        raw(timestamp=f"2024-01-{10 + i:02d}", ingest_date=LATER, **{c: v})
        for i, (c, v) in enumerate(hostile.items())
    ]
    kept, rejected = cleanse([*rows, raw(open=1e308, high=1e308)])
    assert kept["trade_date"].to_list() == [D1]  # huge but finite: the gate's range, not this
    assert rejected["rule"].to_list() == [f"non_finite_{c}" for c in hostile]
    for column, reason in zip(hostile, rejected["reason"], strict=True):
        assert reason.startswith(f"{column} ")
        assert reason.endswith("is not a finite number")
    assert math.isnan(rejected["open"][0])  # the value as received


def test_bars_after_their_ingest_date_are_rejected() -> None:
    kept, rejected = cleanse(
        [
            raw(timestamp="2024-01-02", ingest_date=D1),  # the ingest day itself is fine
            raw(timestamp="2024-01-03", ingest_date=D1),
            raw(timestamp="2999-01-01", ingest_date=D2),
        ],
    )
    assert kept["trade_date"].to_list() == [D1]
    assert rejected["rule"].to_list() == ["after_ingest_date", "after_ingest_date"]
    assert rejected["reason"].to_list() == [
        "trade date 2024-01-03 is after its ingest date 2024-01-02",
        "trade date 2999-01-01 is after its ingest date 2024-01-03",
    ]


def test_a_rejected_future_bar_does_not_supersede_the_real_one() -> None:
    """A later ingest wins a key only with a valid bar: a NaN close loses to the older one."""
    kept, rejected = cleanse(
        [raw(close=1.5), raw(close=math.nan, ingest_date=D2, source_file="f2")]
    )
    assert kept["close"].to_list() == [1.5]
    assert rejected["rule"].to_list() == ["non_finite_close"]


FAILING: dict[str, Any] = {
    "ticker": {"symbol": "1BAD"},
    "date": {"timestamp": "2024-02-30"},
    "not_after": {"timestamp": "2024-01-31"},
    "finite": math.inf,
    "non_negative": -3,
    "positive": 0.0,
}
"""A value failing each kind of check (a column's own value, or the row's overrides)."""


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_every_declared_rule_rejects_its_rows_with_its_reason(rule: CleanseRule) -> None:
    bad = FAILING[rule.check]
    row = raw(**(bad if isinstance(bad, dict) else {rule.column: bad}))
    kept, rejected = cleanse([row, raw(timestamp="2024-01-03", ingest_date=D2)])
    assert kept["trade_date"].to_list() == [D2]
    assert rejected["rule"].to_list() == [rule.name]
    shown = row[rule.shown_column]
    assert str(shown).lower().removesuffix(".0") in rejected["reason"][0].lower()
