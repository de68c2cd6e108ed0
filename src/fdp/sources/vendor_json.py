"""The Alpha Vantage daily time-series JSON shape: written by the simulator, read for all.

Real and simulated data share this one parser, so every engine sees identical
``StockRecord``s whatever produced the bytes.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
from collections import Counter
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
    """Decode a vendor document strictly; malformed JSON, or a key repeated in any object
    (which a decoder would silently resolve to its last value), is a ``DataError`` naming the
    file and, for a repeated date or field, the symbol, date and field."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise DataError(f"{source_file}: malformed JSON ({exc})", file=source_file) from None
    if not isinstance(doc, dict):
        raise DataError(
            f"{source_file}: expected a JSON object, found {type(doc).__name__}", file=source_file
        )
    try:
        repeated = _repeated_key(payload)
    except (ValueError, RecursionError) as exc:
        raise DataError(
            f"{source_file}: cannot check the document for repeated keys ({exc})",
            file=source_file,
        ) from None
    if repeated is not None:
        _refuse_repeated(doc, *repeated, source_file=source_file)
    return doc


def parse_daily(
    payload: bytes, *, source_file: str, ingest_date: dt.date, symbol: str | None = None
) -> Frame[StockRecord]:
    """Parse a TIME_SERIES_DAILY[_ADJUSTED] document into ``StockRecord``s, losslessly.

    Raises ``DataError`` naming the file, and where it applies the symbol, date and field,
    when the document lacks its symbol or time series, repeats a key (a date, a field), a bar
    lacks a field, a value is not a number, or the document is for another symbol than
    ``symbol`` (the one its raw-zone object is named for; case aside, as the vendor echoes
    it). A document in the vendor's own layout takes a fast scan (``_scan``); anything
    else, and every error, goes through the strict decoder, so results and messages are the
    same.
    """
    scanned = _scan(payload)
    if scanned is not None:
        found, typed = scanned
        _same_symbol(found, symbol, source_file)
        return _record_frame(typed, symbol=found, source_file=source_file, ingest_date=ingest_date)
    doc = load_document(payload, source_file=source_file)
    found = _symbol(doc, source_file)
    _same_symbol(found, symbol, source_file)
    series = doc.get(TIME_SERIES_KEY)
    if not isinstance(series, dict):
        raise DataError(
            f"{source_file}: no {TIME_SERIES_KEY!r} for {found}",
            file=source_file,
            symbol=found,
            field=TIME_SERIES_KEY,
        )
    if not series:
        return Frame.empty(StockRecord)
    raw = _series_raw(series, symbol=found, source_file=source_file)
    return _typed(raw, symbol=found, source_file=source_file, ingest_date=ingest_date)


def _symbol(doc: Mapping[str, Any], source_file: str) -> str:
    meta = doc.get(META_KEY)
    symbol = meta.get("2. Symbol") if isinstance(meta, dict) else None
    if not isinstance(symbol, str) or not symbol:
        raise DataError(
            f"{source_file}: no '{META_KEY}' / '2. Symbol'", file=source_file, field="symbol"
        )
    return symbol


def _same_symbol(found: str, expected: str | None, source_file: str) -> None:
    """Refuse a document for another symbol than its object's: it would replace that
    symbol's history with another's."""
    if expected is not None and found.upper() != expected.upper():
        raise DataError(
            f"{source_file}: the document is for {found!r} ('{META_KEY}' / '2. Symbol'), but"
            f" its object is named for {expected}",
            file=source_file,
            symbol=expected,
            field="symbol",
            hint=f"land {found}'s bars under symbol={found}, or fetch {expected} again",
        )


class _Repeated(dict[str, Any]):
    """A decoded JSON object in which ``key`` appeared more than once."""

    key: str


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _repeated_key(payload: bytes) -> tuple[tuple[str, ...], str] | None:
    """(path, key) of the first key that repeats within one object of ``payload`` (valid
    JSON to orjson), or ``None``. orjson keeps a repeated key's last value without a word,
    so the strict path decodes once more with ``json``, whose hook sees every pair; what
    ``json`` cannot decode (nesting deeper than its recursion limit) raises."""
    repeats = False

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal repeats
        obj = dict(items)
        if len(obj) == len(items):
            return obj
        repeats, marked = True, _Repeated(obj)
        marked.key = next(k for k, n in Counter(k for k, _ in items).items() if n > 1)
        return marked

    doc = json.loads(payload, object_pairs_hook=pairs, parse_constant=_no_constant)
    stack: list[tuple[tuple[str, ...], Any]] = [((), doc)] if repeats else []
    while stack:
        path, node = stack.pop()
        if isinstance(node, _Repeated):
            return path, node.key
        if isinstance(node, dict):
            stack.extend(((*path, k), v) for k, v in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend(((*path, str(i)), v) for i, v in reversed(list(enumerate(node))))
    return None


def _refuse_repeated(
    doc: dict[str, Any], path: tuple[str, ...], key: str, *, source_file: str
) -> None:
    """The ``DataError`` for ``key`` repeated in the object at ``path``: a date repeated in
    the series, a field in a bar, or any other key."""
    meta = doc.get(META_KEY)
    symbol = meta.get("2. Symbol") if isinstance(meta, dict) else None
    if not isinstance(symbol, str) or (path, key) in (((), META_KEY), ((META_KEY,), "2. Symbol")):
        symbol = None  # no symbol, or the repeat makes it ambiguous
    fields = ADJUSTED_FIELDS | DAILY_FIELDS
    date, field, what = None, None, f"key {key!r} repeated in {'/'.join(path) or 'the document'}"
    if path == (TIME_SERIES_KEY,):
        date, field, what = key, "timestamp", "date repeated in the time series"
    elif len(path) == 2 and path[0] == TIME_SERIES_KEY:
        date, field, what = path[1], fields.get(key, key), f"field {key!r} repeated in the bar"
    elif path == (META_KEY,) and key == "2. Symbol":
        field = "symbol"
    where = " ".join(str(x) for x in (symbol, date) if x is not None)
    raise DataError(
        f"{source_file}: {where + ': ' if where else ''}{what}; the vendor file is ambiguous",
        file=source_file,
        symbol=symbol,
        date=date,
        field=field,
        hint="fetch the symbol again; fdp never guesses which of two values is right",
    )


def _series_raw(series: dict[str, Any], *, symbol: str, source_file: str) -> pl.DataFrame:
    """The strict path: bars of a decoded document as string columns named as StockRecord's."""
    first = next(iter(series.values()))
    adjusted = isinstance(first, dict) and "5. adjusted close" in first
    fields = ADJUSTED_FIELDS if adjusted else DAILY_FIELDS
    try:
        raw = pl.DataFrame(
            {"timestamp": list(series.keys()), "bar": list(series.values())},
            schema={"timestamp": pl.String, "bar": pl.Struct(dict.fromkeys(fields, pl.String))},
        ).unnest("bar")
    except (TypeError, pl.exceptions.PolarsError) as exc:
        day = next((d for d, bar in series.items() if not isinstance(bar, dict)), None)
        where = f"{symbol} {day}: bar is a JSON {type(series[day]).__name__}" if day else symbol
        raise DataError(
            f"{source_file}: {where}: bars must be objects of strings ({exc})",
            file=source_file,
            symbol=symbol,
            date=day,
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
    cast = raw.with_columns(_cast(n).alias(f"_{n}") for n in present)
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
    """Typed bars (timestamp ascending) as ``StockRecord``s; absent fields are null.

    Built eagerly from Series: a lazy ``select`` waits on Polars' thread pool, which costs
    more than these few columns when the cores are busy.
    """

    def repeat(name: str, value: object, dtype: pl.DataType) -> pl.Series:
        return pl.Series(name, [value], dtype).new_from_index(0, typed.height)

    return Frame(
        StockRecord,
        pl.DataFrame(
            [
                repeat("symbol", symbol, pl.String()),
                typed["timestamp"],
                *(
                    typed[n] if n in typed.columns else repeat(n, None, dtype())
                    for n, dtype in _NUMERIC.items()
                ),
                repeat("source_file", source_file, pl.String()),
                repeat("ingest_date", ingest_date, pl.Date()),
            ]
        ),
        origin=source_file,
    )


def _cast(name: str) -> pl.Expr:
    """A vendor number string, trimmed, as its ``StockRecord`` type (null when it is not a
    number). The scan casts untrimmed strings with the same kernel (``_typed_columns``)."""
    return pl.col(name).str.strip_chars().cast(_NUMERIC[name], strict=False)


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
            f" ({missing.height} bar(s) affected)",
            file=source_file,
            symbol=symbol,
            date=day,
            field=field,
        )


def _not_a_number(cast: pl.DataFrame, name: str, *, symbol: str, source_file: str) -> None:
    row = cast.filter(pl.col(name).is_not_null() & pl.col(f"_{name}").is_null()).row(0, named=True)
    day = row["timestamp"]
    raise DataError(
        f"{source_file}: {symbol} {day}: field {name!r} is not a number: {row[name]!r}",
        file=source_file,
        symbol=symbol,
        date=day,
        field=name,
    )


_SERIES_OPEN = re.compile(rb'"Time Series \(Daily\)"[ \t\n\r]*:[ \t\n\r]*\{')
_JSON_SPACE = b" \t\n\r"
_QUOTE = ord('"')
_COLON = ord(":")
_DAY = len("YYYY-MM-DD")
_Ints = npt.NDArray[np.int64]
_INLINE = 12
"""The longest string an Arrow string view holds inline: every date and vendor number fits."""
_LENGTH = 4
"""The bytes of the length before the string in an Arrow string view."""


def _scan(payload: bytes) -> tuple[str, pl.DataFrame] | None:
    """(symbol, typed bars oldest first) of a document in the vendor's regular shape.

    Vectorised over the positions of the colons instead of decoding the JSON. The header and
    the first bar are decoded by orjson; every other bar must repeat the first one byte for
    byte outside its date and values, the pieces laid end to end covering the whole series;
    the series must be the document's last member, dates as long as ``YYYY-MM-DD`` and
    strictly newest first (as strings), every value a number to the cast, no quotes, escapes
    or control characters in strings, ASCII only. These make the document valid JSON holding
    exactly what the strict decoder would read; ``None`` sends anything else to it.

    Positions are offsets into ``payload``, copied whole only when its last value is too near
    its end to be read as a view: fresh megabytes cost page faults that rival the parse.
    """
    opening = _SERIES_OPEN.search(payload)
    if opening is None or payload.find(b"\\", opening.end()) >= 0 or not payload.isascii():
        return None
    head_bytes = payload[: opening.start()] + b'"Time Series (Daily)":{}}'
    try:
        head = orjson.loads(head_bytes)
    except orjson.JSONDecodeError:
        return None
    try:
        if _repeated_key(head_bytes) is not None:
            return None  # an ambiguous header: the strict path names the repeated key
    except (ValueError, RecursionError):
        return None
    meta = head.get(META_KEY) if isinstance(head, dict) else None
    symbol = meta.get("2. Symbol") if isinstance(meta, dict) else None
    if not isinstance(symbol, str) or not symbol or head.get(TIME_SERIES_KEY) != {}:
        return None
    colons = np.flatnonzero(np.frombuffer(payload, np.uint8) == _COLON)
    colons = colons[np.searchsorted(colons, opening.end()) :]
    for fields in (ADJUSTED_FIELDS, DAILY_FIELDS):
        typed = _bars(fields, payload, opening.end(), colons)
        if typed is not None:
            return symbol, typed
    return None


def _first_bar(fields: dict[str, str], payload: bytes, start: int, end: int) -> _Ints | None:
    """Positions of the quotes in ``payload[start:end]`` (the first bar and the next one's
    date) when the first bar decodes to exactly ``fields``, in order, and the punctuation
    around the bars (before the first, after it, after the last) is JSON's."""
    text = np.frombuffer(payload, np.uint8, end - start, start)
    quotes = np.flatnonzero(text == _QUOTE) + start
    per = 2 + 4 * len(fields)
    follows = end < len(payload)
    if len(quotes) != per + 2 * follows or quotes[1] - quotes[0] != _DAY + 1:
        return None
    try:
        first = orjson.loads(b"{" + payload[quotes[0] : quotes[per - 1] + 1] + b"}}")
    except orjson.JSONDecodeError:
        return None
    bar = next(iter(first.values()))
    if len(first) != 1 or not isinstance(bar, dict) or list(bar) != list(fields):
        return None
    after = payload[quotes[per - 1] : quotes[per] + 1 if follows else None]
    if (
        payload[start : quotes[0]].translate(None, _JSON_SPACE)
        or after.translate(None, _JSON_SPACE) != (b'"},"' if follows else b'"}}}')
        or payload[payload.rindex(b'"') :].translate(None, _JSON_SPACE) != b'"}}}'
    ):
        return None
    return quotes


def _bars(fields: dict[str, str], payload: bytes, start: int, colons: _Ints) -> pl.DataFrame | None:
    """The typed bars of the series opening at ``start`` when all are like the first, oldest
    first.

    A bar has one colon after its date and one after each key. The first bar's text from the
    closing quote of its date or of a value to the opening quote of the next value (or of the
    next bar's date) is a piece holding one of those colons (the last piece, none); each
    bar's pieces are placed by its colons, and its values fill the gaps between them.
    """
    n = len(colons) // (len(fields) + 1)
    if n == 0 or len(colons) != n * (len(fields) + 1):
        return None
    at = colons.reshape(n, len(fields) + 1)
    quotes = _first_bar(fields, payload, start, int(at[1, 0]) if n > 1 else len(payload))
    if quotes is None:
        return None
    cuts = [(quotes[k], quotes[k + 3] + 1) for k in range(1, 4 * len(fields) - 2, 4)]
    pieces = [payload[a:b] for a, b in cuts]  # after the date, after each value but the last
    between = payload[quotes[-3] : quotes[-2] + 1] if n > 1 else b""  # after the last value
    # Where each piece starts: its colon less the colon's place in it (the first piece holds
    # two colons, the date's and the first key's; it is placed by the date's).
    places = [at[:, 0] - pieces[0].index(b":")]
    places += [at[:, k + 1] - p.index(b":") for k, p in enumerate(pieces) if k]
    places.append(np.append(places[0][1:] - _DAY - len(between), payload.rindex(b'"')))
    ends = [p + len(piece) for p, piece in zip(places, pieces, strict=False)]
    starts = [places[0] - _DAY, *ends]  # the date, then each value
    lengths = [np.full(n, _DAY), *(b - a for a, b in zip(ends, places[1:], strict=True))]
    if places[0][0] != quotes[1] or min(k.min() for k in lengths) < 1:
        return None  # the pieces do not tile the series in order
    shown = list(zip(places, pieces, strict=False))
    if n > 1:
        shown.append((places[-1][:-1], between))
    if not all(_repeats(payload, p, piece) for p, piece in shown):
        return None
    # The date, then the values grouped by type, each one column of strings, oldest bar first.
    names = ["timestamp", *sorted(fields.values(), key=lambda c: _NUMERIC[c] == pl.Int64)]
    which = [0, *(1 + list(fields.values()).index(c) for c in names[1:])]
    views = _views(
        payload if ends[-1][-1] + _INLINE <= len(payload) else payload + bytes(_INLINE),
        np.concatenate([starts[k][::-1] for k in which]),
        np.concatenate([lengths[k][::-1] for k in which]),
    )
    if views is None:
        return None
    # Each date newer than the next as strings: none alike, and the strict decoder's order.
    days = np.ascontiguousarray(views[:n, _LENGTH : _LENGTH + _DAY]).view(f"S{_DAY}")[:, 0]
    if not (days[1:] > days[:-1]).all():
        return None
    array = pa.Array.from_buffers(pa.string_view(), len(views), [None, pa.py_buffer(views)])
    return _typed_columns(pl.Series(pl.from_arrow(array)), names, n)


def _at(text: bytes, starts: _Ints, width: int) -> npt.NDArray[np.bytes_]:
    """The ``width`` bytes of ``text`` from each of ``starts``, one fancy index in all."""
    return np.ndarray((len(text) - width + 1,), f"S{width}", text, strides=(1,))[starts]


def _repeats(text: bytes, starts: _Ints, piece: bytes) -> bool:
    """``piece`` stands at every one of ``starts``."""
    return _at(text, starts, len(piece)).tobytes() == piece * len(starts)


def _views(text: bytes, starts: _Ints, lengths: _Ints) -> npt.NDArray[np.uint8] | None:
    """The strings at ``starts`` as Arrow string views holding their bytes inline (a length,
    then ``_INLINE`` bytes, zero after the string), one row each; ``None`` when a string is
    longer, or holds a quote or a control character (JSON forbids them raw), so that each is
    the whole JSON string between the quotes around it."""
    if lengths.max() > _INLINE:
        return None
    views = _at(text, starts - _LENGTH, _LENGTH + _INLINE).view(np.uint8).reshape(len(starts), -1)
    mask = np.take(_INSIDE, lengths, axis=0)
    views *= mask
    # ``mask`` is reused for the checks: fresh arrays of this size cost page faults.
    if np.count_nonzero(np.less(views, ord(" "), out=mask)) != views.size - lengths.sum():
        return None
    if np.equal(views, _QUOTE, out=mask).any():
        return None
    views.view("<u4")[:, 0] = lengths
    return views


def _typed_columns(strings: pl.Series, names: list[str], n: int) -> pl.DataFrame | None:
    """``strings`` (``n`` per name; the timestamp, then the numbers grouped by type) as typed
    columns, one cast per type; ``None`` when a value is not a number."""
    columns = {names[0]: strings.slice(0, n)}
    first = 1
    for dtype, group in itertools.groupby(names[1:], key=_NUMERIC.__getitem__):
        members = list(group)
        values = strings.slice(first * n, len(members) * n).cast(dtype, strict=False)
        if values.null_count():
            return None
        columns |= {c: values.slice(k * n, n) for k, c in enumerate(members)}
        first += len(members)
    return pl.DataFrame(columns)


_INSIDE = (np.arange(_INLINE + 1)[:, None] > np.arange(-_LENGTH, _INLINE)) & (
    np.arange(-_LENGTH, _INLINE) >= 0
)
"""``_INSIDE[k]`` marks the bytes of a ``k``-byte string in its view."""
