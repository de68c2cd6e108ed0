"""PostgreSQL's extended (64-bit, seeded) hash functions, rewritten in numpy, a column at a time.

Reconciliation on PostgreSQL compares ``hash_record_extended(ROW(...), seed)`` computed by the
server over the stored rows with the same function computed here over the lake's rows, so the
two sides share no code and no data path. What this follows, from PostgreSQL's sources
(``src/common/hashfn.c``, ``utils/adt/rowtypes.c``, ``access/hash/hashfunc.c``):

- ``hash_bytes_extended``: Bob Jenkins' lookup3 over 12-byte blocks of little-endian words; the
  state starts at ``0x9e3779b9 + length + 3923095``, a non-zero seed is mixed in first (high
  word into ``a``, low word into ``b``), the last 0-11 bytes are added with the lowest byte of
  ``c`` left for the length, and the result is ``b << 32 | c``. ``hash_bytes_uint32_extended``
  is the same for one 4-byte word.
- int4 and date (days since 2000-01-01) hash as one word; int8 and timestamptz (microseconds
  since 2000-01-01) fold their halves into one word first (the high half inverted for a
  negative value); float8 hashes its 8 bytes, except that 0.0 and -0.0 hash to the seed itself
  and every NaN as the one NaN PostgreSQL returns; text hashes its UTF-8 bytes.
- ``hash_record_extended``: ``result = result * 31 + element_hash`` over the columns in order,
  modulo 2**64, a NULL element counting 0.

Every value is hashed exactly as a little-endian server does (x86-64, ARM64): the words are
read from the bytes in that order. Work is done in chunks of rows that fit in the CPU cache,
with in-place operations: a lookup3 round is some forty array operations per column.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

CHUNK_ROWS = 32_768
"""Rows hashed at once: each of the state's arrays stays in the CPU cache."""
BLOCK_ROWS = 262_144
"""Rows whose columns are laid out as words at once (per-column conversions cost a call each)."""
_START = 0x9E3779B9 + 3_923_095
"""lookup3's initial state before the length is added (PostgreSQL's constants)."""
PG_EPOCH_DAYS = 10_957
"""PostgreSQL counts dates from 2000-01-01: days from 1970-01-01 to then."""
_PG_EPOCH_US = PG_EPOCH_DAYS * 86_400 * 1_000_000
_CANONICAL_NAN = np.array([0x7FF8_0000_0000_0000], np.uint64).view(np.float64)[0]
"""The NaN ``get_float8_nan()`` returns (C's ``NAN`` as a double): every NaN hashes as this one."""


class _Lookup3:
    """One lookup3 state per row, ``a``, ``b``, ``c``, updated in place."""

    __slots__ = ("a", "b", "c", "t", "u")

    def __init__(self, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> None:
        self.a, self.b, self.c = a, b, c
        self.t = np.empty_like(a)
        self.u = np.empty_like(a)

    @classmethod
    def start(cls, length: np.ndarray | int, seed: _Seed) -> _Lookup3:
        """The state after the length and the (per-row) seed: ``hash_bytes_extended``'s start."""
        init = (np.asarray(length, np.int64) + _START).astype(np.uint32)
        init = np.broadcast_to(init, seed.hi.shape).copy()
        state = cls(init, init.copy(), init.copy())
        if seed.any:
            unseeded = state.copy() if not seed.all else None
            state.a += seed.hi
            state.b += seed.lo
            state.mix()
            if unseeded is not None:
                state.where(seed.nonzero, unseeded)
        return state

    def copy(self) -> _Lookup3:
        return _Lookup3(self.a.copy(), self.b.copy(), self.c.copy())

    def where(self, keep: np.ndarray, other: _Lookup3) -> None:
        """Rows where ``keep`` is false take ``other``'s state."""
        for mine, theirs in ((self.a, other.a), (self.b, other.b), (self.c, other.c)):
            np.copyto(mine, theirs, where=~keep)

    def _rot(self, x: np.ndarray, k: int) -> np.ndarray:
        np.left_shift(x, k, out=self.t)
        np.right_shift(x, 32 - k, out=self.u)
        np.bitwise_or(self.t, self.u, out=self.t)
        return self.t

    def mix(self) -> None:
        a, b, c = self.a, self.b, self.c
        for x, y, z, k in ((a, c, b, 4), (b, a, c, 6), (c, b, a, 8), (a, c, b, 16), (b, a, c, 19)):
            x -= y
            x ^= self._rot(y, k)
            y += z
        c -= b
        c ^= self._rot(b, 4)
        b += a

    def final(self) -> np.ndarray:
        """lookup3's final mix; the 64-bit result ``b << 32 | c``."""
        a, b, c = self.a, self.b, self.c
        for x, y, k in ((c, b, 14), (a, c, 11), (b, a, 25), (c, b, 16), (a, c, 4), (b, a, 14)):
            x ^= y
            x -= self._rot(y, k)
        c ^= b
        c -= self._rot(b, 24)
        out: np.ndarray = (b.astype(np.uint64) << np.uint64(32)) | c
        return out


@dataclass(frozen=True, slots=True)
class _Seed:
    """Per-row 64-bit seeds as the two words lookup3 adds."""

    value: np.ndarray
    hi: np.ndarray
    lo: np.ndarray
    nonzero: np.ndarray
    any: bool
    all: bool

    @classmethod
    def of(cls, seeds: np.ndarray) -> _Seed:
        value = seeds.astype(np.int64).view(np.uint64)
        nonzero = value != 0
        return cls(
            value,
            (value >> np.uint64(32)).astype(np.uint32),
            (value & np.uint64(0xFFFF_FFFF)).astype(np.uint32),
            nonzero,
            bool(nonzero.any()),
            bool(nonzero.all()),
        )

    def take(self, rows: np.ndarray) -> _Seed:
        return _Seed.of(self.value[rows].view(np.int64))


def _hash_word(words: np.ndarray, start: _Lookup3) -> np.ndarray:
    """``hash_bytes_uint32_extended`` of each 32-bit word, from the seeded start for 4 bytes."""
    state = start.copy()
    state.a += words
    return state.final()


def _fold_int8(values: np.ndarray) -> np.ndarray:
    """``hashint8extended``'s one word: the two halves of the int64 XORed together, the high
    one inverted for a negative value (timestamptz hashes this way too)."""
    bits = values.view(np.uint64)
    low = bits.astype(np.uint32)
    high = (bits >> np.uint64(32)).astype(np.uint32)
    np.invert(high, out=high, where=values < 0)
    low ^= high
    return low


def _hash_float8(words: np.ndarray, zero: np.ndarray, start: _Lookup3, seed: _Seed) -> np.ndarray:
    """``hashfloat8extended`` of doubles given as (low, high) word pairs; ``zero`` marks 0.0 and
    -0.0, which hash to the seed itself."""
    state = start.copy()
    state.a += words[:, 0]
    state.b += words[:, 1]
    hashed = state.final()
    np.copyto(hashed, seed.value, where=zero)
    return hashed


def _padded(starts: np.ndarray, lengths: np.ndarray, data: np.ndarray, width: int) -> np.ndarray:
    """The strings at ``starts`` as rows of ``width`` bytes, zero past each one's end. Strings
    of one length laid end to end are a reshape of the bytes, not a gather."""
    n = len(lengths)
    out = np.zeros((n, width), np.uint8)
    if not n:
        return out
    length = int(lengths[0])
    if int(lengths.min()) == int(lengths.max()) and starts[-1] - starts[0] == (n - 1) * length:
        out[:, :length] = data[starts[0] : starts[0] + n * length].reshape(n, length)
        return out
    index = starts[:, None] + np.arange(width)
    np.minimum(index, max(len(data) - 1, 0), out=index)
    if len(data):
        np.copyto(out, data[index], where=np.arange(width) < lengths[:, None])
    return out


def _hash_text(offsets: np.ndarray, data: np.ndarray, seed: _Seed) -> np.ndarray:
    """``hashtextextended`` (deterministic collation) of strings given as Arrow offsets and
    UTF-8 bytes. Strings are grouped by their number of whole 12-byte blocks: each group is
    laid out as a zero-padded word matrix and hashed a block (a column of words) at a time."""
    starts, lengths = offsets[:-1], np.diff(offsets)
    blocks = lengths // 12
    out = np.empty(len(lengths), np.uint64)
    for count in np.unique(blocks).tolist():
        rows = np.flatnonzero(blocks == count)
        words = _padded(starts[rows], lengths[rows], data, 12 * (count + 1)).view("<u4")
        state = _Lookup3.start(lengths[rows], seed.take(rows))
        for block in range(count + 1):
            state.a += words[:, 3 * block]
            state.b += words[:, 3 * block + 1]
            if block < count:
                state.c += words[:, 3 * block + 2]
                state.mix()
            else:  # the last 0-11 bytes: the lowest byte of c is the length's
                state.c += words[:, 3 * block + 2] << np.uint32(8)
        out[rows] = state.final()
    return out


@dataclass(frozen=True, slots=True)
class _Column:
    """One column as the arrays its hash needs, for the whole frame (chunks slice them)."""

    kind: str
    """``word`` (int4, date), ``int8`` (folded to a word already), ``float8`` or ``text``."""
    values: np.ndarray
    """word / int8: one uint32 per row; float8: (rows, 2) words; text: int64 offsets."""
    null: np.ndarray | None
    zero: np.ndarray | None = None
    data: np.ndarray | None = None


def _column(series: pl.Series) -> _Column:
    """``series`` as the words PostgreSQL's hash function for its type reads."""
    dtype = series.dtype
    null = series.is_null().to_numpy() if series.null_count() else None
    if dtype == pl.String:
        array = series.to_arrow(compat_level=pl.CompatLevel.oldest())  # large_string
        n = len(array)
        offsets = np.frombuffer(array.buffers()[1], np.int64)[array.offset : array.offset + n + 1]
        data = np.frombuffer(array.buffers()[2] or b"", np.uint8)
        return _Column("text", offsets, null, data=data)
    if dtype == pl.Float64:
        doubles = series.fill_null(0.0).to_numpy().astype(np.float64)
        doubles[np.isnan(doubles)] = _CANONICAL_NAN
        return _Column("float8", doubles.view(np.uint32).reshape(-1, 2), null, zero=doubles == 0)
    if dtype == pl.Int64:
        return _Column("int8", _fold_int8(series.fill_null(0).to_numpy()), null)
    if dtype == pl.Int32:
        return _Column("word", series.fill_null(0).to_numpy().view(np.uint32), null)
    if dtype == pl.Date:
        days = series.to_physical().fill_null(0).to_numpy().astype(np.int32) - PG_EPOCH_DAYS
        return _Column("word", days.view(np.uint32), null)
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        micros = series.dt.epoch("us").fill_null(0).to_numpy() - _PG_EPOCH_US
        return _Column("int8", _fold_int8(micros), null)
    raise TypeError(f"no PostgreSQL hash for column {series.name!r} of type {dtype}")


def record_hash(df: pl.DataFrame, seeds: np.ndarray) -> np.ndarray:
    """``hash_record_extended(ROW(<df's columns, in order>), seed)`` of every row, as the int64
    PostgreSQL returns; ``seeds`` holds one seed per row. Columns are laid out as words a
    block of rows at a time (memory follows the block, not the frame), then hashed a chunk at
    a time."""
    out = np.empty(df.height, np.int64)
    for block in range(0, df.height, BLOCK_ROWS):
        rows = df.slice(block, BLOCK_ROWS)
        columns = [_column(s) for s in rows.iter_columns()]
        for start in range(0, rows.height, CHUNK_ROWS):
            end = min(start + CHUNK_ROWS, rows.height)
            hashed = _chunk_hash(columns, start, end, _Seed.of(seeds[block + start : block + end]))
            out[block + start : block + end] = hashed
    return out


def _chunk_hash(columns: list[_Column], start: int, end: int, seed: _Seed) -> np.ndarray:
    word_start, float_start = _Lookup3.start(4, seed), _Lookup3.start(8, seed)
    result = np.zeros(end - start, np.uint64)
    for col in columns:
        if col.kind == "text":
            assert col.data is not None
            hashed = _hash_text(col.values[start : end + 1], col.data, seed)
        elif col.kind == "float8":
            assert col.zero is not None
            hashed = _hash_float8(col.values[start:end], col.zero[start:end], float_start, seed)
        else:
            hashed = _hash_word(col.values[start:end], word_start)
        if col.null is not None:
            hashed[col.null[start:end]] = 0
        result *= np.uint64(31)
        result += hashed
    return result.view(np.int64)
