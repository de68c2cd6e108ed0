"""The Alpha Vantage daily time-series JSON shape: written by the simulator, read for all.

Real and simulated data share this one parser, so every engine sees identical
``StockRecord``s whatever produced the bytes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import orjson
import polars as pl

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
    """
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
    cast = raw.with_columns(_numeric(n).alias(f"_{n}") for n in present)
    bad = cast.select(
        (pl.col(n).is_not_null() & pl.col(f"_{n}").is_null()).any().alias(n) for n in present
    ).row(0, named=True)
    for name in present:
        if bad[name]:
            _not_a_number(cast, name, symbol=symbol, source_file=source_file)
    typed = cast.select(
        pl.lit(symbol).alias("symbol"),
        "timestamp",
        *(
            pl.col(f"_{n}").alias(n) if n in present else pl.lit(None, dtype).alias(n)
            for n, dtype in _NUMERIC.items()
        ),
        pl.lit(source_file).alias("source_file"),
        pl.lit(ingest_date).alias("ingest_date"),
    )
    return Frame(StockRecord, typed.sort("timestamp"), origin=source_file)


def _numeric(name: str) -> pl.Expr:
    """A vendor number string as its ``StockRecord`` type (null when it is not a number)."""
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
            f" ({missing.height} bar(s) affected)"
        )


def _not_a_number(cast: pl.DataFrame, name: str, *, symbol: str, source_file: str) -> None:
    row = cast.filter(pl.col(name).is_not_null() & pl.col(f"_{name}").is_null()).row(0, named=True)
    raise DataError(
        f"{source_file}: {symbol} {row['timestamp']}: field {name!r} is not a number: {row[name]!r}"
    )
