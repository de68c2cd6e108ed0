"""A batch's keys: uniqueness proved from sorted runs or found by hashing, ranges, order.

The oracle for uniqueness is Polars' own hash-based ``is_duplicated`` over the key."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from wh_helpers import make_rows

from fdp.errors import DataError
from fdp.records import in_key_order
from fdp.warehouse import keys

JAN = [dt.date(2024, 1, d) for d in (29, 30, 31)]
FEB = [dt.date(2024, 2, d) for d in (1, 2)]


def _lake_order() -> pl.DataFrame:
    """Rows as the lake returns them: month by month, each month sorted by key."""
    return pl.concat([make_rows(["AAA", "BBB"], JAN, seed=1), make_rows(["AAA", "BBB"], FEB)])


@pytest.mark.parametrize(
    "batch",
    [
        pytest.param(_lake_order(), id="month runs"),
        pytest.param(_lake_order().sort("symbol", "trade_date"), id="sorted"),
        pytest.param(_lake_order().reverse(), id="reversed"),
        pytest.param(_lake_order().sample(fraction=1.0, shuffle=True, seed=3), id="shuffled"),
    ],
)
def test_unique_keys_pass_in_any_order(batch: pl.DataFrame) -> None:
    assert not batch.select(pl.struct(keys.KEY).is_duplicated().any()).item()
    keys.check_unique(batch, "batch")


@pytest.mark.parametrize(
    "batch",
    [
        pytest.param(pl.concat([_lake_order(), make_rows(["BBB"], FEB[:1], seed=2)]), id="tail"),
        # Two sorted runs whose dates overlap: the run check cannot prove them apart.
        pytest.param(
            pl.concat([make_rows(["BBB"], JAN + FEB), make_rows(["BBB"], JAN[2:] + FEB[:1])]),
            id="overlapping runs",
        ),
    ],
)
def test_a_key_twice_is_named(batch: pl.DataFrame) -> None:
    with pytest.raises(DataError, match=r"batch X: .* e\.g\. BBB 2024-0"):
        keys.check_unique(batch, "batch X")


def test_ranges_span_each_symbols_dates() -> None:
    batch = pl.concat([_lake_order(), make_rows(["CCC"], FEB[1:])])
    got = sorted(zip(*keys.ranges(batch), strict=True))
    assert got == [("AAA", JAN[0], FEB[-1]), ("BBB", JAN[0], FEB[-1]), ("CCC", FEB[1], FEB[1])]


def test_key_order_sorts_only_when_needed() -> None:
    batch = _lake_order()
    ordered = in_key_order(batch)
    assert_frame_equal(ordered, batch.sort(keys.KEY))
    assert in_key_order(ordered) is ordered
