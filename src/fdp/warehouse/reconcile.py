"""Reconciliation: the warehouse rows of the loaded keys must equal the lake's rows.

The checksum is a vector of per-column aggregates (row count; per column a sum: of the value,
of days since 1970 for dates, of epoch seconds for timestamps, of the length for text; per
nullable column its non-null count), computed by the database in SQL and independently by
Polars on the lake rows. A non-null count of a NOT NULL column would only repeat the row count
(14 such counts were a third of the query's time here). Integer aggregates must match exactly,
float ones to 1e-9 relative.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import polars as pl
import pyarrow as pa

from fdp.errors import TerminalError
from fdp.records import EnrichedStockRecord
from fdp.warehouse import sql

REL_TOL = 1e-9
ABS_TOL = 1e-6


@dataclass(frozen=True, slots=True)
class Aggregate:
    """One element of the checksum: its label, SQL over alias ``f``, Polars twin, exactness."""

    label: str
    sql: str
    polars: pl.Expr
    exact: bool


def aggregates() -> list[Aggregate]:
    out = [Aggregate("rows", "COUNT(*)", pl.len(), exact=True)]
    for col in EnrichedStockRecord.columns():
        c, t, ref = col.name, col.arrow_type, f"f.{col.name}"
        if col.nullable:
            out.append(Aggregate(f"count({c})", f"COUNT({ref})", pl.col(c).count(), exact=True))
        if pa.types.is_floating(t):
            out.append(Aggregate(f"sum({c})", f"SUM({ref})", pl.col(c).sum(), exact=False))
        elif pa.types.is_integer(t):
            expr = pl.col(c).cast(pl.Int128).sum()
            out.append(Aggregate(f"sum({c})", f"SUM({ref})", expr, exact=True))
        elif pa.types.is_date(t):
            expr = pl.col(c).cast(pl.Int32).cast(pl.Int64).sum()
            out.append(Aggregate(f"days({c})", f"SUM({ref} - DATE '1970-01-01')", expr, True))
        elif pa.types.is_timestamp(t):
            expr = (pl.col(c).dt.epoch("us").cast(pl.Float64) / 1e6).sum()
            out.append(Aggregate(f"epoch({c})", f"SUM(DATE_PART('epoch', {ref}))", expr, False))
        else:
            expr = pl.col(c).str.len_chars().cast(pl.Int64).sum()
            out.append(Aggregate(f"length({c})", f"SUM(LENGTH({ref}))", expr, exact=True))
    return out


def checksum_sql(ranges_in: sql.Dialect | None = None) -> str:
    """The database's side: over the staged keys, or the key ranges (``sql.checksum``)."""
    return sql.checksum([a.sql for a in aggregates()], ranges_in)


def frame_checksum(df: pl.DataFrame) -> list[Any]:
    """The checksum of lake rows, computed by Polars (lazily: the eager select first copied
    a batch of many chunks into one)."""
    return list(df.lazy().select([a.polars.alias(a.label) for a in aggregates()]).collect().row(0))


def _number(value: Any) -> float | int:
    if value is None:
        return 0
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value  # type: ignore[no-any-return]


def compare(expected: Sequence[Any], actual: Sequence[Any], where: str) -> None:
    """Raise ``TerminalError`` listing every aggregate where the warehouse differs."""
    diffs = []
    for agg, want, got in zip(aggregates(), expected, actual, strict=True):
        w, g = _number(want), _number(got)
        same = w == g if agg.exact else math.isclose(w, g, rel_tol=REL_TOL, abs_tol=ABS_TOL)
        if not same:
            diffs.append(f"{agg.label}: lake {w}, warehouse {g}")
    if diffs:
        raise TerminalError(f"reconciliation failed for {where}: " + "; ".join(diffs))
