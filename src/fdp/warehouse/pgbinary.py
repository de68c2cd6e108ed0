"""PostgreSQL's binary COPY format, built column by column with numpy (no per-row Python).

A binary COPY row is ``int16 field count`` then, per field, ``int32 byte length`` (-1 for
NULL) and the value in network byte order. Rows that share their string byte lengths and
their null pattern have the same layout, so each such group is one numpy structured array
whose fields are filled a column at a time; the groups are concatenated (row order does not
matter to COPY). Real data has few groups: ticker lengths times indicator warm-up patterns.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from fdp.records import Column, EnrichedStockRecord

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
TRAILER = b"\xff\xff"
_PG_EPOCH_DAYS = 10_957  # 2000-01-01 minus 1970-01-01
_PG_EPOCH_US = _PG_EPOCH_DAYS * 86_400 * 1_000_000
_MASK = "__fdp_null_mask"


def _width(col: Column) -> tuple[str, int] | None:
    """numpy big-endian dtype and byte width of a fixed-width column (None for text)."""
    t = col.arrow_type
    if pa.types.is_floating(t):
        return ">f8", 8
    if pa.types.is_int64(t) or pa.types.is_timestamp(t):
        return ">i8", 8
    if pa.types.is_integer(t) or pa.types.is_date(t):
        return ">i4", 4
    return None


def _values(series: pl.Series, col: Column) -> np.ndarray:
    t = col.arrow_type
    if pa.types.is_date(t):
        return series.cast(pl.Int32).to_numpy() - _PG_EPOCH_DAYS
    if pa.types.is_timestamp(t):
        return series.dt.epoch("us").to_numpy() - _PG_EPOCH_US
    return series.to_numpy()


def _text_bytes(series: pl.Series) -> np.ndarray:
    """The UTF-8 bytes of equal-length strings, contiguous (rows x length)."""
    array = pa.array(series.to_arrow()).cast(pa.large_string())
    offsets = np.frombuffer(array.buffers()[1], np.int64)[
        array.offset : array.offset + len(array) + 1
    ]
    data = np.frombuffer(array.buffers()[2], np.uint8)
    return data[offsets[0] : offsets[-1]]


def _group(df: pl.DataFrame, columns: tuple[Column, ...]) -> np.ndarray:
    """One binary COPY chunk for rows that share string lengths and null pattern."""
    fields: list[tuple[str, str]] = [("count", ">i2")]
    plan = []
    for i, col in enumerate(columns):
        series = df[col.name]
        null = series.null_count() == len(series)
        fixed = _width(col)
        length = 0 if fixed is None else fixed[1]
        if fixed is None and not null:
            length = int(series.str.len_bytes()[0])
        fields.append((f"len{i}", ">i4"))
        if not null and length:
            fields.append((f"v{i}", fixed[0] if fixed else f"S{length}"))
        plan.append((i, col, series, -1 if null else length))
    out = np.empty(len(df), dtype=np.dtype(fields))
    out["count"] = len(columns)
    for i, col, series, length in plan:
        out[f"len{i}"] = length
        if length > 0:
            if _width(col) is None:
                out[f"v{i}"] = _text_bytes(series).view(f"S{length}")
            else:  # byte-swap contiguously first: 2.5x faster than into the packed field
                out[f"v{i}"] = _values(series, col).astype(out.dtype[f"v{i}"])
    return out.view(np.uint8)


def rows(df: pl.DataFrame, columns: tuple[Column, ...] | None = None) -> list[np.ndarray]:
    """The binary COPY rows of ``df``'s ``columns`` (all EnrichedStockRecord columns unless
    told) as byte arrays to send between HEADER and TRAILER; chunks of one table may be
    encoded separately."""
    columns = columns or EnrichedStockRecord.columns()
    flags = [pl.col(c.name).is_null().cast(pl.Int64) * (1 << i) for i, c in enumerate(columns)]
    text = [c.name for c in columns if _width(c) is None]
    keyed = df.select([c.name for c in columns]).with_columns(
        pl.sum_horizontal(flags).alias(_MASK),
        *[pl.col(n).str.len_bytes().alias(f"__fdp_len_{n}") for n in text],
    )
    keys = [_MASK, *[f"__fdp_len_{n}" for n in text]]
    parts = keyed.partition_by(keys, maintain_order=False, include_key=False)
    return [_group(part, columns) for part in parts]
