"""The runner on hand-made batches: every rule passes clean data, fails alone when broken,
and tolerates (rejecting the rows) what stays within its ``mostly``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import polars as pl
import pytest
from quality_bars import INGEST, clean_batch, clean_frame, set_value

from fdp.quality import accepted_rows, validate_batch
from fdp.quality.completeness import missing_sessions
from fdp.quality.runner import _pandas_results
from fdp.quality.suite import load_suite
from fdp.records import Frame, StockRecord

Mutation = Callable[[pl.DataFrame], pl.DataFrame]
ROW = 7  # AAA's 8th session


def _extra(df: pl.DataFrame, **values: object) -> pl.DataFrame:
    """``df`` plus a copy of its last row with ``values`` changed."""
    return pl.concat([df, set_value(df.tail(1), [0], **values)])


# rule -> (mutation, rules expected to fail). 82 rows: one bad row breaks mostly=0.99.
BREAKS: dict[str, tuple[Mutation, set[str]]] = {
    "close_not_null": (lambda df: set_value(df, [ROW], close=None), set()),
    "open_in_range": (lambda df: set_value(df, [ROW], open=2e6, high=None), set()),
    "high_in_range": (lambda df: set_value(df, [ROW], high=2e6), set()),
    "low_in_range": (lambda df: set_value(df, [ROW], low=-1.0), set()),
    "close_in_range": (lambda df: set_value(df, [ROW], close=2e6, high=None), set()),
    "adjusted_close_in_range": (lambda df: set_value(df, [ROW], adjusted_close=2e6), set()),
    "volume_in_range": (lambda df: set_value(df, list(range(5)), volume=-1), set()),
    # low <= close <= high implies low <= high: breaking high >= low breaks a close rule too.
    "high_ge_low": (
        lambda df: set_value(df, [ROW], high=10.0, low=20.0, open=None, close=20.0),
        {"close_le_high"},
    ),
    "open_ge_low": (lambda df: set_value(df, [ROW], open=1.0), set()),
    "open_le_high": (lambda df: set_value(df, [ROW], open=99.0), set()),
    "close_ge_low": (lambda df: set_value(df, [ROW], close=1.0), set()),
    "close_le_high": (lambda df: set_value(df, [ROW], close=99.0), set()),
    "symbol_is_ticker": (lambda df: _extra(df, symbol="bad!"), set()),
    "timestamp_is_date": (lambda df: _extra(df, timestamp="2024-02-30"), set()),
    "row_count_in_bounds": (lambda df: df.clear(), set()),
    "split_coefficient_in_range": (lambda df: set_value(df, [ROW], split_coefficient=0.0), set()),
    "dividend_in_range": (lambda df: set_value(df, [ROW], dividend_amount=-0.5), set()),
    "key_unique": (lambda df: pl.concat([df, df.slice(ROW, 1)]), set()),
    # A bar after the batch's last date: completeness leaves it to its own rule.
    "not_after_ingest": (lambda df: _extra(df, timestamp="2024-05-02"), set()),
    "sessions_complete": (lambda df: df.filter(pl.int_range(pl.len()) != ROW), set()),
}


def _validate(df: pl.DataFrame) -> tuple[set[str], object]:
    done = validate_batch(Frame(StockRecord, df), source="simulator", ingest_date=INGEST)
    return {r.rule for r in done.report.failures}, done


def test_clean_batch_passes_every_rule() -> None:
    failed, done = _validate(clean_frame())
    assert failed == set()
    report = done.report  # type: ignore[attr-defined]
    assert report.success
    assert report.evaluated_count == 23
    assert report.rejected_count == 0
    assert report.row_count == 82


@pytest.mark.parametrize("rule", sorted(BREAKS))
def test_breaking_one_rule_fails_on_it(rule: str) -> None:
    mutate, implied = BREAKS[rule]
    failed, done = _validate(mutate(clean_frame()))
    assert failed == {rule} | implied
    (result,) = [r for r in done.report.expectations if r.rule == rule]  # type: ignore[attr-defined]
    assert not result.success
    if rule not in ("row_count_in_bounds", "sessions_complete", "key_unique"):
        assert result.unexpected_count == (5 if rule == "volume_in_range" else 1)
        assert result.failing_keys
    if rule == "sessions_complete":
        assert result.failing_keys == (("AAA", clean_frame()["timestamp"][ROW]),)


# Rows the record contract already guarantees; the suite must still catch them elsewhere.
FRAME_GUARANTEED: dict[str, Mutation] = {
    "columns_ordered": lambda df: df.select("timestamp", pl.exclude("timestamp")),
    "symbol_not_null": lambda df: _extra(df, symbol=None),
    "timestamp_not_null": lambda df: _extra(df, timestamp=None),
}


@pytest.mark.parametrize("rule", sorted(FRAME_GUARANTEED))
def test_rules_the_record_contract_guarantees_still_fail_alone(rule: str) -> None:
    data = FRAME_GUARANTEED[rule](clean_frame())
    results = _pandas_results(data, load_suite())
    assert {name for name, r in results.items() if not r.success} == {rule}


TOLERATED = [r for r in sorted(BREAKS) if r not in ("row_count_in_bounds", "key_unique")]
TOLERATED.remove("sessions_complete")
TOLERATED.remove("symbol_is_ticker")
TOLERATED.remove("timestamp_is_date")


@pytest.mark.parametrize("rule", TOLERATED)
def test_within_mostly_passes_and_rejects_the_bad_row(rule: str) -> None:
    """4 symbols x 82 sessions: one bad row is 0.3%, within every tolerance."""
    symbols = ("AAA", "BBB", "CCC", "DDD")
    big = clean_frame(symbols, end=dt.date(2024, 4, 30))
    mutate, _ = BREAKS[rule]
    bad = mutate(big)
    failed, done = _validate(bad)
    assert failed == set()
    rejected = done.rejected  # type: ignore[attr-defined]
    bad_rows = 5 if rule == "volume_in_range" else 1
    assert rejected.height == bad_rows
    assert all(rule in r.split(";") for r in rejected["rule"])
    assert rejected["reason"].str.len_chars().min() > 0  # type: ignore[operator]
    (result,) = [r for r in done.report.expectations if r.rule == rule]  # type: ignore[attr-defined]
    assert result.success
    assert result.unexpected_count == bad_rows
    assert len(result.failing_keys) == bad_rows
    kept = accepted_rows(Frame(StockRecord, bad), rejected)
    assert kept.df.height + rejected.height == bad.height
    assert kept.df.join(rejected, on=["symbol", "timestamp"], how="semi").is_empty()


def test_accepted_rows_matches_on_symbol_date_and_file() -> None:
    batch = clean_batch()
    rejected = batch.df.slice(3, 2).with_columns(rule=pl.lit("r"), reason=pl.lit("why"))
    other_file = rejected.with_columns(source_file=pl.lit("file:///elsewhere.json"))
    assert len(accepted_rows(batch, rejected)) == len(batch) - 2
    assert accepted_rows(batch, other_file).df.equals(batch.df)


def test_missing_sessions_against_the_calendar() -> None:
    """Reference: NYSE sessions of Jan 2024 written out by hand (Jan 1 and 15 are holidays)."""
    jan = [2, 3, 4, 5, 8, 9, 10, 11, 12, 16, 17, 18, 19, 22, 23, 24, 25, 26, 29, 30, 31]
    keys = pl.DataFrame(
        {
            "symbol": ["A"] * 19 + ["B"] * 2,
            "timestamp": [f"2024-01-{d:02d}" for d in jan if d not in (9, 30)]
            + ["2024-01-30", "2024-01-31"],
        }
    )
    assert missing_sessions(keys).rows() == [("A", "2024-01-09"), ("A", "2024-01-30")]
