"""A batch's keys: their order, their uniqueness and their ranges, in linear time.

A batch read from the lake comes in runs sorted by key (one run per partition file) and a
benchmark's batch is one sorted run; checking each run is strictly increasing and that runs
cover disjoint spans of the last key column proves every key unique without hashing them
(hashing 10M keys cost 3 s of CPU here, this 0.3 s). Any other order falls back to hashing.
The work goes through lazy frames: an eager group-by first copied a batch read from the lake
(hundreds of chunks) into one, 2-5 s of CPU for 10M rows, the lazy one 0.2 s.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from fdp.errors import DataError
from fdp.records import ROW_KEY, after_previous_key
from fdp.warehouse import sql
from fdp.warehouse.sql import RANGE_FROM, RANGE_TO

KEY = ROW_KEY
_RUN = "__fdp_run"

Ranges = list[list[Any]]
"""A batch's key ranges as statement parameters: one list per ``sql.RANGE_COLUMNS``."""


def _runs_prove_unique(df: pl.DataFrame) -> bool:
    last = KEY[-1]
    runs = (
        df.lazy()
        .select(pl.col(last), (~after_previous_key().fill_null(False)).cum_sum().alias(_RUN))
        .group_by(_RUN)
        .agg(pl.col(last).min().alias(RANGE_FROM), pl.col(last).max().alias(RANGE_TO))
        .sort(RANGE_FROM)
        .collect()
    )
    return bool(
        runs.select((pl.col(RANGE_FROM).shift(-1) > pl.col(RANGE_TO)).fill_null(True).all()).item()
    )


def check_unique(df: pl.DataFrame, what: str) -> None:
    """Raise ``DataError`` naming up to three keys that ``df`` holds more than once."""
    if df.height < 2 or _runs_prove_unique(df):
        return
    twice = (
        df.lazy()
        .select(KEY)
        .filter(pl.struct(KEY).is_duplicated())
        .unique()
        .sort(KEY)
        .head(3)
        .collect()
    )
    if twice.height:
        keys = ", ".join(" ".join(str(v) for v in key) for key in twice.rows())
        raise DataError(f"{what}: a key appears more than once, e.g. {keys}")


def ranges(df: pl.DataFrame) -> Ranges:
    """Per value of the leading key columns, the first and last value of the last one: the
    parameters of the statements over key ranges (``sql.fact_in_ranges``)."""
    *leading, last = KEY
    found = (
        df.lazy()
        .group_by(leading)
        .agg(pl.col(last).min().alias(RANGE_FROM), pl.col(last).max().alias(RANGE_TO))
        .collect()
    )
    return [found[name].to_list() for name in sql.RANGE_COLUMNS]


def within(ranges: Ranges, segments: pl.DataFrame) -> Ranges:
    """The ``ranges`` (parameters, as ``ranges`` returns them) of ``segments`` only: the
    values of the leading key columns."""
    wanted = set(segments.select(KEY[:-1]).rows())
    leading = list(zip(*ranges[: len(KEY) - 1], strict=True))
    keep = [i for i, value in enumerate(leading) if value in wanted]
    return [[column[i] for i in keep] for column in ranges]
