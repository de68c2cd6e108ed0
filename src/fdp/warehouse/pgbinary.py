"""PostgreSQL's binary COPY format, built with numpy a chunk of rows at a time, rows in order.

A binary COPY row is ``int16 field count`` then, per field, ``int32 byte length`` (-1 for
NULL) and the value in network byte order. A chunk is first laid out as a byte matrix, one
line per row and one slot per field as wide as the field's longest value in the chunk, filled
a column at a time by strided copies (no per-row Python); one boolean mask then squeezes out
the bytes of NULL values and of text shorter than its slot. Rows keep their order, so rows
sorted by key reach the server in key order: the primary key is then appended to at its
right edge instead of being split all over (2x faster COPY here than rows grouped by layout).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import polars as pl

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
TRAILER = b"\xff\xff"
CHUNK_ROWS = 65_536
"""Rows per encoded chunk: its byte matrix (~20 MiB here) stays in cache-friendly sizes."""

_PG_EPOCH_DAYS = 10_957  # 2000-01-01 minus 1970-01-01
_PG_EPOCH_US = _PG_EPOCH_DAYS * 86_400 * 1_000_000
_NULL_LENGTH = np.frombuffer(np.array([-1], ">i4").tobytes(), np.uint8)


@dataclass(frozen=True, slots=True)
class _Field:
    """One column of a chunk, ready to be laid out: slot width and bytes in network order."""

    width: int
    values: np.ndarray
    """Fixed width: the big-endian values (one per row). Text: the UTF-8 bytes, (rows, width)."""
    null: np.ndarray | None
    text_lengths: np.ndarray | None
    """Text only: each value's byte length, -1 for NULL."""


def _fixed(series: pl.Series) -> tuple[np.ndarray, str]:
    """A fixed-width column's values as the integers or floats PostgreSQL receives."""
    dtype = series.dtype
    if dtype in (pl.Float64, pl.Float32):
        return series.to_numpy(), ">f8"
    if dtype == pl.Date:
        return series.to_physical().fill_null(0).to_numpy() - _PG_EPOCH_DAYS, ">i4"
    if isinstance(dtype, pl.Datetime):
        return series.dt.epoch("us").fill_null(0).to_numpy() - _PG_EPOCH_US, ">i8"
    if dtype == pl.Int64:
        return series.fill_null(0).to_numpy(), ">i8"
    if dtype in (pl.Int32, pl.Int16, pl.Int8, pl.UInt16, pl.UInt8):
        return series.fill_null(0).to_numpy(), ">i4"
    raise TypeError(f"no binary COPY encoding for column {series.name!r} of type {dtype}")


def _text(series: pl.Series) -> _Field:
    array = series.to_arrow(compat_level=pl.CompatLevel.oldest())  # large_string: int64 offsets
    n = len(array)
    offsets = np.frombuffer(array.buffers()[1], np.int64)[array.offset : array.offset + n + 1]
    data = np.frombuffer(array.buffers()[2] or b"", np.uint8)
    lengths = np.diff(offsets)
    width = int(lengths.max()) if n else 0
    null = series.is_null().to_numpy() if series.null_count() else None
    if null is not None:
        lengths[null] = 0
    if width == 0:
        matrix = np.empty((n, 0), np.uint8)
    elif null is None and int(lengths.min()) == width:  # one length: the bytes are the matrix
        matrix = data[offsets[0] : offsets[-1]].reshape(n, width)
    else:
        index = offsets[:-1, None] + np.arange(width)
        np.minimum(index, len(data) - 1, out=index)
        matrix = data[index]
    declared = lengths.astype(">i4")
    if null is not None:
        declared[null] = -1
    return _Field(width, matrix, null, declared)


def _field(series: pl.Series) -> _Field:
    if series.dtype == pl.String:
        return _text(series)
    values, dtype = _fixed(series)
    null = series.is_null().to_numpy() if series.null_count() else None
    return _Field(np.dtype(dtype).itemsize, values.astype(dtype), null, None)


def _slot(matrix: np.ndarray, offset: int, width: int) -> np.ndarray:
    """A strided view of ``width`` bytes at ``offset`` in every line of ``matrix``, typed as
    one opaque value per line so a whole column is copied in with one assignment."""
    return np.ndarray(
        (matrix.shape[0],), np.dtype(f"V{width}"), matrix, offset, (matrix.strides[0],)
    )


def encode(df: pl.DataFrame) -> memoryview:
    """The binary COPY rows of ``df`` (every column, in order), as bytes to send between
    ``HEADER`` and ``TRAILER``; chunks of one table may be encoded separately."""
    n = df.height
    fields = [_field(df.to_series(i)) for i in range(df.width)]
    width = 2 + sum(4 + f.width for f in fields)
    line = np.zeros(width, np.uint8)
    line[:2] = np.frombuffer(np.array([df.width], ">i2").tobytes(), np.uint8)
    offset = 2
    for f in fields:
        line[offset : offset + 4] = np.frombuffer(np.array([f.width], ">i4").tobytes(), np.uint8)
        offset += 4 + f.width
    matrix = np.empty((n, width), np.uint8)
    matrix[:] = line
    keep: np.ndarray | None = None
    offset = 2
    for f in fields:
        start, end = offset + 4, offset + 4 + f.width
        if f.text_lengths is not None:
            _slot(matrix, offset, 4)[...] = f.text_lengths.view("V4")
            matrix[:, start:end] = f.values
            short = f.text_lengths.astype(np.int64) < f.width  # -1 (NULL) counts as short
            if f.width and short.any():
                keep = np.ones((n, width), bool) if keep is None else keep
                keep[:, start:end] = np.arange(f.width) < np.maximum(f.text_lengths, 0)[:, None]
        else:
            _slot(matrix, start, f.width)[...] = f.values.view(f"V{f.width}")
            if f.null is not None:
                matrix[f.null, offset : offset + 4] = _NULL_LENGTH
                keep = np.ones((n, width), bool) if keep is None else keep
                keep[f.null, start:end] = False
        offset = end
    return (matrix.reshape(-1) if keep is None else matrix[keep]).data


def chunks(df: pl.DataFrame, rows: int = CHUNK_ROWS) -> Iterator[pl.DataFrame]:
    """``df`` in slices of ``rows`` rows (zero-copy), each to be encoded on its own."""
    for start in range(0, df.height, rows):
        yield df.slice(start, rows)
