"""The Alpha Vantage daily time-series JSON shape: written by the simulator, read for all.

Real and simulated data share this one parser, so every engine sees identical
``StockRecord``s whatever produced the bytes.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import polars as pl
import pyarrow as pa

from fdp.errors import DataError
from fdp.records import Frame, StockRecord

TIME_SERIES_KEY = "Time Series (Daily)"
META_KEY = "Meta Data"

# vendor field -> StockRecord column; the adjusted endpoint numbers its fields differently.
ADJUSTED_FIELDS = {
    "1. open": "open",
    "2. high": "high",
    "3. low": "low",
    "4. close": "close",
    "5. adjusted close": "adjusted_close",
    "6. volume": "volume",
    "7. dividend amount": "dividend_amount",
    "8. split coefficient": "split_coefficient",
}
DAILY_FIELDS = {
    "1. open": "open",
    "2. high": "high",
    "3. low": "low",
    "4. close": "close",
    "5. volume": "volume",
}
_REQUIRED = ("open", "high", "low", "close", "volume")


def encode_daily_adjusted(symbol: str, bars: pl.DataFrame, *, last_refreshed: dt.date) -> bytes:
    """Vendor-shaped TIME_SERIES_DAILY_ADJUSTED JSON for one symbol, newest bar first.

    ``bars`` has columns trade_date, open, high, low, close, adjusted_close, volume,
    dividend_amount, split_coefficient; prices are written with four decimals as the vendor does.
    """
    rows = bars.sort("trade_date", descending=True)
    series = {
        day.isoformat(): {
            "1. open": f"{o:.4f}",
            "2. high": f"{h:.4f}",
            "3. low": f"{lo:.4f}",
            "4. close": f"{c:.4f}",
            "5. adjusted close": f"{a:.4f}",
            "6. volume": str(v),
            "7. dividend amount": f"{d:.4f}",
            "8. split coefficient": f"{s:.1f}",
        }
        for day, o, h, lo, c, a, v, d, s in rows.select(
            "trade_date", *(f for f in ADJUSTED_FIELDS.values())
        ).iter_rows()
    }
    doc = {
        META_KEY: {
            "1. Information": "Daily Time Series with Splits and Dividend Events",
            "2. Symbol": symbol,
            "3. Last Refreshed": last_refreshed.isoformat(),
            "4. Output Size": "Full size",
            "5. Time Zone": "US/Eastern",
        },
        TIME_SERIES_KEY: series,
    }
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2)


def load_document(payload: bytes, *, source_file: str) -> dict[str, Any]:
    """Decode a vendor document; malformed JSON is a ``DataError`` naming the file."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise DataError(f"{source_file}: malformed JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise DataError(f"{source_file}: expected a JSON object, found {type(doc).__name__}")
    return doc


def parse_daily(payload: bytes, *, source_file: str, ingest_date: dt.date) -> Frame[StockRecord]:
    """Parse a TIME_SERIES_DAILY[_ADJUSTED] document into ``StockRecord``s, losslessly.

    Raises ``DataError`` naming the file, and where it applies the date and field, when the
    document lacks its symbol or time series, a bar lacks a field, or a value is not a number.
    A document in the vendor's own layout takes a fast scan (``_scan``); anything else, and
    every error, goes through the strict decoder, so results and messages are the same.
    """
    scanned = _scan(payload)
    if scanned is not None:
        symbol, raw = scanned
        typed = raw.select("timestamp", *(_cast(n, trim=False) for n in raw.columns[1:]))
        if not any(typed.null_count().row(0)):
            return _record_frame(
                typed, symbol=symbol, source_file=source_file, ingest_date=ingest_date
            )
    doc = load_document(payload, source_file=source_file)
    symbol = _symbol(doc, source_file)
    series = doc.get(TIME_SERIES_KEY)
    if not isinstance(series, dict):
        raise DataError(f"{source_file}: no {TIME_SERIES_KEY!r} for {symbol}")
    if not series:
        return Frame.empty(StockRecord)
    raw = _series_raw(series, symbol=symbol, source_file=source_file)
    return _typed(raw, symbol=symbol, source_file=source_file, ingest_date=ingest_date)


def _symbol(doc: Mapping[str, Any], source_file: str) -> str:
    meta = doc.get(META_KEY)
    symbol = meta.get("2. Symbol") if isinstance(meta, dict) else None
    if not isinstance(symbol, str) or not symbol:
        raise DataError(f"{source_file}: no '{META_KEY}' / '2. Symbol'")
    return symbol


def _series_raw(series: dict[str, Any], *, symbol: str, source_file: str) -> pl.DataFrame:
    """The strict path: bars of a decoded document as string columns named as StockRecord's."""
    first = next(iter(series.values()))
    fields = ADJUSTED_FIELDS if "5. adjusted close" in first else DAILY_FIELDS
    try:
        raw = pl.DataFrame(
            {"timestamp": list(series.keys()), "bar": list(series.values())},
            schema={"timestamp": pl.String, "bar": pl.Struct(dict.fromkeys(fields, pl.String))},
        ).unnest("bar")
    except (TypeError, pl.exceptions.PolarsError) as exc:
        day = next((d for d, bar in series.items() if not isinstance(bar, dict)), None)
        where = f"{symbol} {day}: bar is a JSON {type(series[day]).__name__}" if day else symbol
        raise DataError(
            f"{source_file}: {where}: bars must be objects of strings ({exc})"
        ) from None
    return raw.rename(fields)


def _typed(
    raw: pl.DataFrame, *, symbol: str, source_file: str, ingest_date: dt.date
) -> Frame[StockRecord]:
    """String columns to a ``StockRecord`` frame, checked.

    Every column is checked in one pass; the message is built only when a check fails.
    """
    required = [f for f in _REQUIRED if f in raw.columns]
    if any(raw.select(pl.col(f).null_count() for f in required).row(0)):
        for field in required:
            _require_present(raw, field, symbol=symbol, source_file=source_file)
    present = [n for n in _NUMERIC if n in raw.columns]
    cast = raw.with_columns(_cast(n, trim=True).alias(f"_{n}") for n in present)
    bad = cast.select(
        (pl.col(n).is_not_null() & pl.col(f"_{n}").is_null()).any().alias(n) for n in present
    ).row(0, named=True)
    for name in present:
        if bad[name]:
            _not_a_number(cast, name, symbol=symbol, source_file=source_file)
    typed = cast.select("timestamp", *(pl.col(f"_{n}").alias(n) for n in present))
    return _record_frame(
        typed.sort("timestamp"), symbol=symbol, source_file=source_file, ingest_date=ingest_date
    )


def _record_frame(
    typed: pl.DataFrame, *, symbol: str, source_file: str, ingest_date: dt.date
) -> Frame[StockRecord]:
    """Typed bars (timestamp ascending) as ``StockRecord``s; absent fields are null."""
    frame = typed.select(
        pl.lit(symbol).alias("symbol"),
        "timestamp",
        *(
            pl.col(n) if n in typed.columns else pl.lit(None, dtype).alias(n)
            for n, dtype in _NUMERIC.items()
        ),
        pl.lit(source_file).alias("source_file"),
        pl.lit(ingest_date).alias("ingest_date"),
    )
    return Frame(StockRecord, frame, origin=source_file)


def _cast(name: str, *, trim: bool) -> pl.Expr:
    """A vendor number string as its ``StockRecord`` type (null when it is not a number).

    The strict decoder trims the JSON string first; the scan does not, because whitespace
    there may be a raw control character that makes the document invalid JSON.
    """
    col = pl.col(name).str.strip_chars() if trim else pl.col(name)
    return col.cast(_NUMERIC[name], strict=False)


_NUMERIC = {
    "open": pl.Float64,
    "high": pl.Float64,
    "low": pl.Float64,
    "close": pl.Float64,
    "adjusted_close": pl.Float64,
    "volume": pl.Int64,
    "dividend_amount": pl.Float64,
    "split_coefficient": pl.Float64,
}


def _require_present(raw: pl.DataFrame, field: str, *, symbol: str, source_file: str) -> None:
    missing = raw.filter(pl.col(field).is_null())
    if missing.height:
        day = missing["timestamp"][0]
        raise DataError(
            f"{source_file}: {symbol} {day}: field {field!r} missing"
            f" ({missing.height} bar(s) affected)"
        )


def _not_a_number(cast: pl.DataFrame, name: str, *, symbol: str, source_file: str) -> None:
    row = cast.filter(pl.col(name).is_not_null() & pl.col(f"_{name}").is_null()).row(0, named=True)
    raise DataError(
        f"{source_file}: {symbol} {row['timestamp']}: field {name!r} is not a number: {row[name]!r}"
    )


_SERIES_OPEN = re.compile(rb'"Time Series \(Daily\)"[ \t\n\r]*:[ \t\n\r]*\{')
_JSON_SPACE = b" \t\n\r"
_QUOTE = ord('"')
_DATE = np.frombuffer(b'"0000-00-00"', np.uint8)
_WORD = 8
_Ints = npt.NDArray[np.int64]
_MASKS = np.array(  # _MASKS[k] keeps the first k bytes of a little-endian word
    [(1 << (8 * k)) - 1 for k in range(_WORD)] + [(1 << 64) - 1], np.uint64
)


def _scan(payload: bytes) -> tuple[str, pl.DataFrame] | None:
    """(symbol, bars as strings, oldest first) of a document in the vendor's regular shape.

    Vectorised over the positions of the quote characters instead of decoding the JSON. The
    header and the first bar are decoded by orjson; every other bar must repeat the first
    one byte for byte outside its date and values; the series must be the document's last
    member, dates ``YYYY-MM-DD`` strictly newest first, no escapes, ASCII only. With the
    caller's check that every value is a number, these make the document valid JSON holding
    exactly what the strict decoder would read; ``None`` sends anything else to it.
    """
    opening = _SERIES_OPEN.search(payload)
    if opening is None:
        return None
    series = payload[opening.end() :]
    if b"\\" in series or not series.isascii() or len(series) >= 2**31:
        return None
    try:
        head = orjson.loads(payload[: opening.start()] + b'"Time Series (Daily)":{}}')
    except orjson.JSONDecodeError:
        return None
    meta = head.get(META_KEY) if isinstance(head, dict) else None
    symbol = meta.get("2. Symbol") if isinstance(meta, dict) else None
    if not isinstance(symbol, str) or not symbol or head.get(TIME_SERIES_KEY) != {}:
        return None
    quotes = np.flatnonzero(np.frombuffer(series, np.uint8) == _QUOTE)
    for fields in (ADJUSTED_FIELDS, DAILY_FIELDS):
        raw = _bars(fields, series, quotes)
        if raw is not None:
            return symbol, raw
    return None


def _first_bar_is(fields: dict[str, str], series: bytes, quotes: _Ints, per: int) -> bool:
    """The first bar decodes to exactly ``fields``, in order, and the document's punctuation
    around the bars (before the first, between two, after the last) is JSON's."""
    try:
        first = orjson.loads(b"{" + series[quotes[0] : quotes[per - 1] + 1] + b"}}")
    except orjson.JSONDecodeError:
        return False
    bar = next(iter(first.values()))
    if len(first) != 1 or not isinstance(bar, dict) or list(bar) != list(fields):
        return False
    between = b'"},"' if len(quotes) > per else b'"}}}'
    return (
        not series[: quotes[0]].translate(None, _JSON_SPACE)
        and series[quotes[per - 1] : quotes[per] + 1 if len(quotes) > per else None].translate(
            None, _JSON_SPACE
        )
        == between
        and series[quotes[-1] :].translate(None, _JSON_SPACE) == b'"}}}'
    )


def _bars(fields: dict[str, str], series: bytes, quotes: _Ints) -> pl.DataFrame | None:
    """The bars of ``series`` (the text after the series' ``{``) when all are like the first."""
    per = 2 + 4 * len(fields)
    n = len(quotes) // per
    if n == 0 or len(quotes) != n * per or not _first_bar_is(fields, series, quotes, per):
        return None
    bar = quotes.reshape(n, per)
    # 8-byte words starting at every byte, little- and big-endian (padding keeps reads inside).
    padded = series + bytes(2 * _WORD)
    words = np.ndarray((len(series) + _WORD + 1,), "<u8", padded, strides=(1,))
    big = np.ndarray((len(series) + _WORD + 1,), ">u8", padded, strides=(1,))
    if not _same_skeleton(bar, words, len(series)) or not _dates_descend(bar, big):
        return None
    data = np.concatenate([[0], np.arange(len(fields)) * 4 + 4])
    oldest_first = bar[::-1]
    first = (oldest_first[:, data] + 1).T.ravel()
    strings = _short_strings(words, first, (oldest_first[:, data + 1]).T.ravel() - first)
    if strings is None:
        return None
    names = ["timestamp", *fields.values()]
    return pl.DataFrame({c: strings.slice(k * n, n) for k, c in enumerate(names)})


def _same_skeleton(bar: _Ints, words: _Ints, size: int) -> bool:
    """Every bar repeats the first byte for byte from the closing quote of its date or of a
    value to the opening quote of the next value (or of the next bar's date)."""
    starts = bar[:, 1::4]
    stops = np.concatenate([bar[:, 4::4], np.append(bar[1:, 0], 0)[:, None]], axis=1)
    lengths = stops - starts + 1
    if not (
        (lengths[:, :-1] == lengths[0, :-1]).all() and (lengths[:-1, -1] == lengths[0, -1]).all()
    ):
        return False
    pieces = [(j, o) for j, length in enumerate(lengths[0]) for o in range(0, int(length), _WORD)]
    segment, offset = np.array(pieces).T
    keep = np.minimum(lengths[0][segment] - offset, _WORD)
    seen = words[np.minimum(starts[:, segment] + offset, size)] & _MASKS[keep]
    inner = segment < lengths.shape[1] - 1
    return bool(
        (seen[:, inner] == seen[0, inner]).all() and (seen[:-1, ~inner] == seen[0, ~inner]).all()
    )


def _dates_descend(bar: _Ints, big: _Ints) -> bool:
    """Every date reads ``YYYY-MM-DD`` and is older than the one before it."""
    if not (bar[:, 1] - bar[:, 0] == len(_DATE) - 1).all():
        return False
    # The quoted date as two big-endian words, bytes 0-7 and 4-11: they order as the text.
    days = big[bar[:, :1] + [0, len(_DATE) - _WORD]]
    newer, older = days[:-1], days[1:]
    if not (
        (newer[:, 0] > older[:, 0]) | ((newer[:, 0] == older[:, 0]) & (newer[:, 1] > older[:, 1]))
    ).all():
        return False
    chars = np.frombuffer(days.tobytes(), np.uint8).reshape(len(bar), 2 * _WORD)
    return _iso_dates(np.concatenate([chars[:, :_WORD], chars[:, -(len(_DATE) - _WORD) :]], 1))


def _iso_dates(dates: npt.NDArray[np.uint8]) -> bool:
    """Every row of ``dates`` (n x 12 bytes, quotes included) reads ``"dddd-dd-dd"``."""
    digit = ord("0") == _DATE
    shape = dates[:, ~digit] == _DATE[~digit]
    digits = dates[:, digit]
    return bool(shape.all() and ((digits >= ord("0")) & (digits <= ord("9"))).all())


_INLINE = 12
"""The longest string an Arrow string view holds inline: every date and vendor number fits."""


def _short_strings(words: _Ints, starts: _Ints, lengths: _Ints) -> pl.Series | None:
    """The substrings at ``starts`` (read as 8-byte ``words``) as one Polars string Series.

    Built as Arrow string views with the bytes inline, which Polars adopts as they are;
    ``None`` when a string is longer than a view holds inline.
    """
    if len(lengths) and lengths.max() > _INLINE:
        return None
    head = words[starts] & _MASKS[np.minimum(lengths, 4)]
    tail = words[starts + 4] & _MASKS[np.clip(lengths - 4, 0, _WORD)]
    views = np.stack([lengths.astype(np.uint64) | (head << np.uint64(32)), tail], axis=1)
    array = pa.Array.from_buffers(pa.string_view(), len(starts), [None, pa.py_buffer(views)])
    return pl.Series(pl.from_arrow(array))
