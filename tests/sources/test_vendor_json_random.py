"""Random vendor documents: ``parse_daily`` (fast scan or strict decoder) reads exactly what an
independent reference reads, and the regular ones take the fast scan.

The reference is the JSON standard (stdlib ``json``) and plain loops: it shares no code with the
parser, only the vendor's field names and the documented rules (the first bar's fields choose
the endpoint; open, high, low, close and volume are required; values are number strings,
trimmed; a key repeated within an object is an error, as is any other document).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fdp.errors import DataError
from fdp.sources.vendor_json import _scan, parse_daily

INGEST = dt.date(2024, 1, 5)
ADJUSTED = {
    "1. open": "open",
    "2. high": "high",
    "3. low": "low",
    "4. close": "close",
    "5. adjusted close": "adjusted_close",
    "6. volume": "volume",
    "7. dividend amount": "dividend_amount",
    "8. split coefficient": "split_coefficient",
}
DAILY = {
    "1. open": "open",
    "2. high": "high",
    "3. low": "low",
    "4. close": "close",
    "5. volume": "volume",
}
COLUMNS = [
    "open",
    "high",
    "low",
    "close",
    "adjusted_close",
    "volume",
    "dividend_amount",
    "split_coefficient",
]
REQUIRED = {"open", "high", "low", "close", "volume"}
# Number strings as the cast reads them (the generators never spell inf or nan).
FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
INT = re.compile(r"[+-]?\d+")
Rows = list[tuple[object, ...]]


class RefusedError(Exception):
    """The reference finds the document malformed."""


def _number(value: object, column: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RefusedError(column)
    if not isinstance(value, str):  # a JSON number, which the strict decoder reads as its text
        if column == "volume" and not isinstance(value, int):
            raise RefusedError(column)
        return value if column == "volume" else float(value)
    text = value.strip()
    if not (INT if column == "volume" else FLOAT).fullmatch(text):
        raise RefusedError(column)
    return int(text) if column == "volume" else float(text)


def reference(payload: bytes) -> tuple[str, Rows] | str:
    """(symbol, bars oldest first) as the JSON standard reads the document, or ``"refused"``."""
    try:
        return _reference(payload)
    except (ValueError, RefusedError):
        return "refused"


def _reject_constant(name: str) -> None:
    raise RefusedError(name)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A repeated key makes a document ambiguous: refused, never resolved to one value."""
    if len({k for k, _ in pairs}) != len(pairs):
        raise RefusedError("repeated key")
    return dict(pairs)


def _reference(payload: bytes) -> tuple[str, Rows]:
    doc = json.loads(
        payload.decode("utf-8"), parse_constant=_reject_constant, object_pairs_hook=_unique_keys
    )
    meta = doc.get("Meta Data") if isinstance(doc, dict) else None
    symbol = meta.get("2. Symbol") if isinstance(meta, dict) else None
    series = doc.get("Time Series (Daily)")
    if not isinstance(symbol, str) or not symbol or not isinstance(series, dict):
        raise RefusedError("shape")
    if not series:
        return symbol, []
    first = next(iter(series.values()))
    fields = ADJUSTED if isinstance(first, dict) and "5. adjusted close" in first else DAILY
    rows = []
    for day, bar in series.items():
        if not isinstance(bar, dict):
            raise RefusedError(day)
        values: dict[str, float | int | None] = dict.fromkeys(COLUMNS)
        for key, column in fields.items():
            if bar.get(key) is not None:
                values[column] = _number(bar[key], column)
            elif column in REQUIRED:
                raise RefusedError(column)
        rows.append((day, *values.values()))
    return symbol, sorted(rows)


def parsed(payload: bytes) -> tuple[str, Rows] | str:
    """What ``parse_daily`` reads, shaped as ``reference``, or its ``DataError`` message."""
    try:
        df = parse_daily(payload, source_file="f.json", ingest_date=INGEST).df
    except DataError as exc:
        return str(exc)
    if not len(df):
        return "", []
    assert df["symbol"].n_unique() == 1
    return df["symbol"][0], df.select("timestamp", *COLUMNS).rows()


def _agree(payload: bytes) -> None:
    """``parse_daily`` reads the reference's bars, or refuses with a message naming the file."""
    expected, got = reference(payload), parsed(payload)
    if expected == "refused":
        assert isinstance(got, str)
        assert got.startswith("f.json: ")
    else:
        assert got == (expected if expected[1] else ("", []))  # no rows, no symbol


def _layout(doc: dict[str, Any], style: int) -> bytes:
    if style == 0:
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2)  # the vendor's own
    if style == 1:
        return orjson.dumps(doc)
    if style == 2:
        return json.dumps(doc, indent=4).encode()
    return json.dumps(doc, indent="\t", separators=(" ,", " : ")).encode() + b"\r\n"


_DIGITS = st.text("0123456789", min_size=1, max_size=5)


@st.composite
def _plain_number(draw: st.DrawFn, *, volume: bool) -> str:
    """A number string no longer than 12 characters: signs, leading zeros, many decimals,
    exponents."""
    sign = draw(st.sampled_from(["", "", "-"]))
    if volume:
        return sign + draw(_DIGITS)
    fraction = draw(st.one_of(st.just(""), st.text("0123456789", min_size=1, max_size=6)))
    exponent = draw(st.sampled_from(["", "", "", "e5", "E-3", "e+2"]))
    text = sign + draw(_DIGITS) + ("." + fraction if fraction else "") + exponent
    return text[:12] if FLOAT.fullmatch(text[:12]) else sign + "0"


def _any_number(*, volume: bool) -> st.SearchStrategy[str]:
    """Also what the fast scan leaves to the strict decoder: long numbers, spaces, the vendor's
    "None", empty strings, text."""
    floats = st.floats(allow_nan=False, allow_infinity=False)
    return st.one_of(
        _plain_number(volume=volume),
        st.integers(-(10**15), 10**15).map(str),
        floats.map(repr) if not volume else st.integers(0, 10**9).map(str),
        floats.map(lambda x: f"{x:.4f}"),
        st.sampled_from(["None", "", " 1.5", "2 ", "abc", "1.0", "-", "."]),
    )


@st.composite
def documents(draw: st.DrawFn) -> tuple[bytes, bool]:
    """(payload, regular): a regular document is in the vendor's shape with short numbers, the
    dates newest first; the others may shuffle dates, drop fields and hold anything."""
    regular = draw(st.booleans())
    keys = list(ADJUSTED if draw(st.booleans()) else DAILY)
    days = draw(
        st.lists(
            st.dates(dt.date(1990, 1, 1), dt.date(2030, 12, 31)),
            min_size=1,
            max_size=30,
            unique=True,
        )
    )
    days.sort(reverse=True)
    if not regular:
        days = draw(st.permutations(days))
    series = {}
    for day in days:
        bar = {
            key: draw(
                _plain_number(volume="volume" in key)
                if regular
                else _any_number(volume="volume" in key)
            )
            for key in keys
        }
        if not regular and draw(st.integers(0, 9)) == 0:
            del bar[draw(st.sampled_from(keys))]
        series[day.isoformat()] = bar
    doc = {"Meta Data": {"1. Information": "Daily Prices", "2. Symbol": "AB.C"}}
    doc["Time Series (Daily)"] = series
    return _layout(doc, draw(st.integers(0, 3))), regular


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_random_documents_read_as_the_reference_does(case: tuple[bytes, bool]) -> None:
    payload, regular = case
    if regular:
        assert _scan(payload) is not None  # the fast scan read it, not the strict decoder
    _agree(payload)


def _vendor(bars: int) -> bytes:
    return orjson.dumps(
        {
            "Meta Data": {"1. Information": "Daily Time Series", "2. Symbol": "A"},
            "Time Series (Daily)": {
                f"2024-01-{31 - k:02d}": {
                    "1. open": f"{10 + k}.1234",
                    "2. high": f"{11 + k}.5",
                    "3. low": "-0.0001",
                    "4. close": f"{100 * k}.25",
                    "5. adjusted close": "7.75",
                    "6. volume": f"{1000 * k + 7}",
                    "7. dividend amount": "0.0000",
                    "8. split coefficient": "1.0",
                }
                for k in range(bars)
            },
        },
        option=orjson.OPT_INDENT_2,
    )


# One bar (nothing to repeat), two (one piece between bars), four.
VENDORS = [_vendor(1), _vendor(2), _vendor(4)]
VENDOR = VENDORS[-1]
EDIT_BYTES = sorted(set(b' \t\n\r"\\:,{}[]-+.eE0129ax\x00\x1f\xff'))


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(VENDORS), st.data())
def test_one_byte_edits_read_as_the_reference_does(vendor: bytes, data: st.DataObject) -> None:
    """Any one-byte change to a vendor document is read, or refused, as the JSON standard
    says: the fast scan never accepts what it must leave to the strict decoder."""
    where = data.draw(st.integers(1, len(vendor) - 1))
    byte = data.draw(st.sampled_from(EDIT_BYTES))
    how = data.draw(st.sampled_from(["replace", "insert", "delete", "swap"]))
    edited = bytearray(vendor)
    if how == "replace":
        edited[where] = byte
    elif how == "insert":
        edited.insert(where, byte)
    elif how == "delete":
        del edited[where]
    else:
        edited[where - 1 : where + 1] = edited[where - 1 : where + 1][::-1]
    _agree(bytes(edited))


@pytest.mark.parametrize("vendor", VENDORS, ids=["1 bar", "2 bars", "4 bars"])
def test_the_reference_reads_the_vendor_documents(vendor: bytes) -> None:
    """The edits above start from documents both read, and the fast scan takes."""
    assert _scan(vendor) is not None
    expected = reference(vendor)
    assert expected != "refused"
    assert len(expected[1]) == VENDORS.index(vendor) + 1 + (VENDORS.index(vendor) == 2)
    _agree(vendor)


@pytest.mark.parametrize(
    ("newer", "older"),
    [
        ("2024-12-01", "2024x01-01"),
        ("2024-01-02", "2024-01-02"),
        ("9", "10"),
        ("2024-1-3", "2024-01-02"),
    ],
)
def test_dates_the_strict_decoder_would_order_or_merge_otherwise(newer: str, older: str) -> None:
    """Dates are strings to the strict decoder: sorted as text, a repeated one refused."""
    payload = VENDORS[1].replace(b'"2024-01-31"', b'"%s"' % newer.encode())
    _agree(payload.replace(b'"2024-01-30"', b'"%s"' % older.encode()))


@pytest.mark.parametrize("value", ["None", "", "abc", "1.0.0", "12345678901234", " 7"])
def test_the_vendors_odd_volumes_behave_as_the_strict_decoder_says(value: str) -> None:
    payload = VENDOR.replace(b'"6. volume": "7"', b'"6. volume": "' + value.encode() + b'"')
    assert payload != VENDOR
    _agree(payload)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'"2. Symbol": "A"', b'"2. Symbol": ""'),
        (b'"2. Symbol": "A"', b'"2. Symbol": 7'),
        (b'"Meta Data"', b'"Meta"'),
        (b'"Time Series (Daily)": {', b'"Time Series (Daily)": {"Note": "x", '),
        (b'"Meta Data": {', b'"Time Series (Daily)": [], "Meta Data": {'),
        (b"\n}", b',\n  "Time Series (Daily)": {}\n}'),
    ],
    ids=[
        "empty symbol",
        "symbol a number",
        "no header",
        "a note first",
        "a series before",
        "a series after",
    ],
)
def test_header_and_series_edits_read_as_the_reference_does(old: bytes, new: bytes) -> None:
    payload = VENDOR.replace(old, new, 1)
    assert payload != VENDOR
    _agree(payload)


@pytest.mark.parametrize(
    "date", [b'2024-01-2"', b"2024-01-2\t", b"2024-01-2\x00", b"2023\\u0030", b"2024-01-1\xc3"]
)
def test_a_date_json_forbids_raw_is_refused(date: bytes) -> None:
    """Dates are not cast to numbers, so the scan itself must refuse what JSON forbids (in
    the oldest bar, each still older than the one before it as text)."""
    payload = VENDOR.replace(b'"2024-01-28"', b'"' + date + b'"')
    assert payload != VENDOR
    _agree(payload)
