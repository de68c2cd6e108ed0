"""Finite, plausible values and no bar after its ingest date, on both GX engines.

pandas counts NaN as missing and Spark compares it as larger than any number, so a NaN must
be caught on each; the runner checks on every rule that fdp's row mask counts what GX counts.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from quality_bars import INGEST, clean_frame, land_batch, set_value

from fdp.config import Settings
from fdp.quality import validate_batch
from fdp.quality.completeness import missing_sessions
from fdp.quality.future_bars import count_after_ingest
from fdp.quality.runner import validate_raw
from fdp.quality.suite import after_ingest, read_rules
from fdp.records import Frame, StockRecord

ROW = 7
FLOATS = ("open", "high", "low", "close", "adjusted_close", "dividend_amount", "split_coefficient")
HOSTILE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "huge": 1e308, "negative": -1.0}
RANGE_RULE = {c: f"{c}_in_range" for c in FLOATS} | {
    "dividend_amount": "dividend_in_range",
    "split_coefficient": "split_coefficient_in_range",
}


def _validate(df: pl.DataFrame) -> Any:
    return validate_batch(Frame(StockRecord, df), source="simulator", ingest_date=INGEST)


def test_every_numeric_field_has_a_closed_range() -> None:
    """A one-sided range would admit an infinity (and so a NaN, validated as +inf)."""
    _, rules, _ = read_rules()
    ranged = {
        r.kwargs["column"]: r
        for r in rules
        if r.type == "expect_column_values_to_be_between" and "column" in r.kwargs
    }
    numeric = [c for c, t in StockRecord.polars_schema().items() if t.is_numeric()]
    assert sorted(ranged) == sorted(numeric)
    for column, rule in ranged.items():
        assert rule.kwargs.get("min_value") is not None, column
        assert rule.kwargs.get("max_value") is not None, column
        assert math.isfinite(rule.kwargs["max_value"]), column


@pytest.mark.parametrize("value", list(HOSTILE), ids=list(HOSTILE))
def test_a_non_finite_or_implausible_value_fails_its_range(value: str) -> None:
    """Each float column broken on its own row: its range rule names exactly that row."""
    df = clean_frame()
    bad = df
    for i, column in enumerate(FLOATS):
        bad = set_value(bad, [2 * i], **{column: HOSTILE[value]})
    done = _validate(bad)
    failed = {r.rule: r for r in done.report.failures}
    rejected = {(r["timestamp"], r["rule"]) for r in done.rejected.iter_rows(named=True)}
    for i, column in enumerate(FLOATS):
        rule, day = RANGE_RULE[column], df["timestamp"][2 * i]
        assert rule in failed, column
        assert failed[rule].unexpected_count == 1
        assert failed[rule].failing_keys == (("AAA", day),)
        assert any(d == day and rule in r.split(";") for d, r in rejected)
    # Rejected rows keep the value as received (a NaN stays NaN).
    for i, column in enumerate(FLOATS):
        (kept,) = done.rejected.filter(pl.col("timestamp") == df["timestamp"][2 * i])[column]
        assert (math.isnan(kept) and math.isnan(HOSTILE[value])) or kept == HOSTILE[value]


def test_a_nan_close_is_not_a_null_close() -> None:
    done = _validate(set_value(clean_frame(), [ROW], close=math.nan))
    results = {r.rule: r for r in done.report.expectations}
    assert results["close_not_null"].unexpected_count == 0
    assert not results["close_in_range"].success


def test_volume_above_its_plausible_bound_fails() -> None:
    """Volume's tolerance is 5 %: five of 82 rows break it."""
    done = _validate(set_value(clean_frame(), list(range(5)), volume=10**13))
    assert {r.rule for r in done.report.failures} == {"volume_in_range"}
    assert done.rejected.height == 5


def test_a_split_too_small_to_divide_by_fails() -> None:
    """1e-320 is finite and positive, but a price divided by it (split-adjusting) overflows."""
    done = _validate(set_value(clean_frame(), [ROW], split_coefficient=1e-320))
    assert {r.rule for r in done.report.failures} == {"split_coefficient_in_range"}


def test_the_future_bar_mask_against_hand_written_dates() -> None:
    rows = pl.DataFrame(
        {
            "timestamp": ["2024-04-30", "2024-05-01", "2024-05-02", "2999-01-01", "2024-02-30"],
            "ingest_date": [INGEST] * 5,
        }
    )
    flagged = rows.select(after_ingest("timestamp", "ingest_date"))["timestamp"].to_list()
    # The ingest day itself is allowed; an impossible date is the date rule's, not this one's.
    assert flagged == [False, False, True, True, False]


def test_the_metric_counts_weighted_pairs() -> None:
    pairs = pl.DataFrame(
        {
            "timestamp": ["2024-05-01", "2024-05-02", "2999-01-01"],
            "ingest_date": [INGEST] * 3,
            "_rows": [10, 3, 1],
        }
    )
    assert count_after_ingest(pairs, "timestamp", "ingest_date") == {"count": 4, "rows": 14}


def _future(df: pl.DataFrame, rows: list[int], day: str) -> pl.DataFrame:
    return pl.concat([df, set_value(df.slice(0, len(rows)), list(range(len(rows))), timestamp=day)])


def test_future_bars_within_mostly_pass_and_are_rejected() -> None:
    big = clean_frame(("AAA", "BBB", "CCC", "DDD"), end=dt.date(2024, 4, 30))
    done = _validate(_future(big, [0], "2999-01-01"))
    assert done.report.success
    assert done.rejected.select("symbol", "timestamp", "rule").rows() == [
        ("AAA", "2999-01-01", "not_after_ingest")
    ]


def test_future_bars_beyond_mostly_fail_the_gate() -> None:
    done = _validate(_future(clean_frame(), [0, 1], "2024-05-02"))
    assert {r.rule for r in done.report.failures} == {"key_unique", "not_after_ingest"}
    (result,) = [r for r in done.report.failures if r.rule == "not_after_ingest"]
    assert result.unexpected_count == 2
    assert result.unexpected_percent == pytest.approx(200 / 84)


def test_completeness_leaves_future_bars_to_their_rule_and_fails_uncovered_dates() -> None:
    keys = pl.DataFrame(
        {
            "symbol": ["A", "A", "A", "B"],
            "timestamp": ["2024-01-02", "2024-01-03", "2999-01-01", "1024-01-02"],
            "ingest_date": [dt.date(2024, 1, 3)] * 4,
        }
    )
    assert missing_sessions(keys, ingest="ingest_date").rows() == [("B", "1024-01-02")]
    # Without the ingest date, 2999 is a date the calendar cannot judge either.
    assert missing_sessions(keys).rows() == [("A", "2999-01-01"), ("B", "1024-01-02")]


@pytest.mark.spark
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_spark_catches_non_finite_values_as_pandas_does(
    spark: Any, settings: Settings, value: str
) -> None:
    df = clean_frame()
    bad = set_value(df, [3], open=HOSTILE[value], split_coefficient=HOSTILE[value])
    bad = set_value(bad, [9], low=HOSTILE[value], dividend_amount=HOSTILE[value])
    land_batch(settings, _future(bad, [0], "2999-01-01"))
    on_spark = validate_raw(settings, "simulator", INGEST, "spark")
    embedded = validate_raw(settings, "simulator", INGEST, "polars")

    def outcome(report: Any) -> list[tuple[str, bool, int | None, tuple[tuple[str, str], ...]]]:
        return [
            (r.rule, r.success, r.unexpected_count, r.failing_keys) for r in report.expectations
        ]

    assert outcome(on_spark.report) == outcome(embedded.report)
    failed = {r.rule for r in on_spark.report.failures}
    assert {"open_in_range", "low_in_range", "dividend_in_range", "not_after_ingest"} <= failed
    assert "split_coefficient_in_range" in failed
    assert on_spark.rejected.height == embedded.rejected.height == 3
    assert_frame_equal(on_spark.rejected, embedded.rejected)
