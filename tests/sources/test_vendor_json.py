"""The vendor JSON shape: encode then parse is lossless; bad documents name file, date, field."""

from __future__ import annotations

import datetime as dt
import json

import orjson
import polars as pl
import pytest

from fdp.errors import DataError
from fdp.records import StockRecord
from fdp.sources.vendor_json import _scan, encode_daily_adjusted, parse_daily

INGEST = dt.date(2024, 1, 5)


def _bars() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "trade_date": [dt.date(2024, 1, 3), dt.date(2024, 1, 2)],
            "open": [10.1234, 9.5],
            "high": [11.0, 10.0001],
            "low": [9.9999, 9.0],
            "close": [10.5, 9.75],
            "adjusted_close": [10.5, 4.875],
            "volume": [1_000_000, 2_000_000],
            "dividend_amount": [0.25, 0.0],
            "split_coefficient": [2.0, 1.0],
        }
    )


def test_encode_then_parse_is_lossless() -> None:
    payload = encode_daily_adjusted("ABC", _bars(), last_refreshed=dt.date(2024, 1, 3))
    doc = orjson.loads(payload)
    assert list(doc["Time Series (Daily)"]) == ["2024-01-03", "2024-01-02"]  # newest first
    assert doc["Time Series (Daily)"]["2024-01-03"]["8. split coefficient"] == "2.0"
    frame = parse_daily(payload, source_file="s3://b/raw/x.json", ingest_date=INGEST)
    assert frame.df.schema == StockRecord.polars_schema()
    expected = (
        _bars()
        .sort("trade_date")
        .with_columns(pl.col("trade_date").cast(pl.String).alias("timestamp"))
    )
    assert frame.df.drop("symbol", "source_file", "ingest_date").equals(
        expected.select(frame.df.drop("symbol", "source_file", "ingest_date").columns)
    )
    assert set(frame.df["symbol"]) == {"ABC"}
    assert set(frame.df["ingest_date"]) == {INGEST}


def test_the_unadjusted_endpoint_leaves_adjusted_fields_null() -> None:
    doc = {
        "Meta Data": {"2. Symbol": "ABC"},
        "Time Series (Daily)": {
            "2024-01-02": {
                "1. open": "1.0",
                "2. high": "2.0",
                "3. low": "0.5",
                "4. close": "1.5",
                "5. volume": "7",
            }
        },
    }
    df = parse_daily(orjson.dumps(doc), source_file="f.json", ingest_date=INGEST).df
    assert df["volume"].to_list() == [7]
    assert df["adjusted_close"].is_null().all()
    assert df["split_coefficient"].is_null().all()


def _doc(bar: dict[str, str]) -> bytes:
    return orjson.dumps(
        {"Meta Data": {"2. Symbol": "ABC"}, "Time Series (Daily)": {"2024-01-02": bar}}
    )


GOOD = {"1. open": "1", "2. high": "2", "3. low": "0.5", "4. close": "1.5", "5. volume": "7"}


@pytest.mark.parametrize(
    ("payload", "pattern"),
    [
        (b"{not json", "f.json: malformed JSON"),
        (b"[1, 2]", "f.json: expected a JSON object"),
        (orjson.dumps({"Time Series (Daily)": {}}), "f.json: no 'Meta Data' / '2. Symbol'"),
        (orjson.dumps({"Meta Data": {"2. Symbol": "ABC"}}), "f.json: no 'Time Series"),
        (_doc({**GOOD, "4. close": "abc"}), r"f.json: ABC 2024-01-02: field 'close' is not a"),
        (_doc({k: v for k, v in GOOD.items() if k != "2. high"}), "ABC 2024-01-02: field 'high'"),
    ],
)
def test_bad_documents_name_the_file_date_and_field(payload: bytes, pattern: str) -> None:
    with pytest.raises(DataError, match=pattern):
        parse_daily(payload, source_file="f.json", ingest_date=INGEST)


def test_an_empty_series_is_an_empty_frame() -> None:
    doc = {"Meta Data": {"2. Symbol": "ABC"}, "Time Series (Daily)": {}}
    assert len(parse_daily(orjson.dumps(doc), source_file="f", ingest_date=INGEST)) == 0


def _unique(pairs: list[tuple[str, object]]) -> dict[str, object]:
    if len({k for k, _ in pairs}) != len(pairs):
        raise ValueError("a repeated key")
    return dict(pairs)


def _oracle(payload: bytes) -> list[tuple[object, ...]]:
    """Bars of a document as the JSON standard reads it (stdlib json), oldest first; a key
    repeated within an object is refused."""
    doc = json.loads(payload, object_pairs_hook=_unique)
    series = doc["Time Series (Daily)"]
    return sorted(
        (
            day,
            *(float(bar[k]) for k in ("1. open", "2. high", "3. low", "4. close")),
            float(bar["5. adjusted close"]),
            int(bar["6. volume"]),
            float(bar["7. dividend amount"]),
            float(bar["8. split coefficient"]),
        )
        for day, bar in series.items()
    )


def _parsed(payload: bytes) -> list[tuple[object, ...]] | str:
    try:
        df = parse_daily(payload, source_file="f.json", ingest_date=INGEST).df
    except DataError as exc:
        return f"DataError: {exc}"
    return (
        df.select(
            "timestamp", *(c for c in df.columns if c not in ("symbol", "timestamp", "source_file"))
        )
        .drop("ingest_date")
        .rows()
    )


VENDOR = encode_daily_adjusted("ABC", _bars(), last_refreshed=dt.date(2024, 1, 3))


@pytest.mark.parametrize(
    "payload",
    [
        VENDOR,
        orjson.dumps(orjson.loads(VENDOR)),
        json.dumps(orjson.loads(VENDOR), indent=4).encode(),
        json.dumps(orjson.loads(VENDOR), indent="\t").encode() + b"\r\n",
    ],
    ids=["vendor", "compact", "indent4", "tabs"],
)
def test_every_regular_layout_reads_as_the_json_standard_does(payload: bytes) -> None:
    assert _scan(payload) is not None  # the fast path, not the strict fallback, read it
    assert _parsed(payload) == _oracle(payload)


EDITS = {
    "escaped value": (b'"10.1234"', b'"\\u0031\\u0030.1234"'),
    "raw tab in value": (b'"10.1234"', b'"10.1234\t"'),
    "key with a trailing space": (b'"1. open": "10.1234"', b'"1. open ": "10.1234"'),
    "duplicate date": (b'"2024-01-02"', b'"2024-01-03"'),
    "dates oldest first": (b'"2024-01-03"', b'"2024-01-01"'),
    "truncated": (b"}\n}", b"}"),
    "trailing member": (b"}\n}", b'},\n  "Note": "x"\n}'),
    "missing comma": (b'",\n      "2. high"', b'"\n      "2. high"'),
}


@pytest.mark.parametrize("name", list(EDITS))
def test_unusual_documents_give_the_strict_result(name: str) -> None:
    """A document off the vendor's regular shape is still read (or refused) as JSON says."""
    old, new = EDITS[name]
    payload = VENDOR.replace(old, new, 1) if name != "truncated" else VENDOR.rstrip()[:-1]
    assert payload != VENDOR
    try:
        expected: list[tuple[object, ...]] | str = _oracle(payload)
    except (ValueError, KeyError):
        expected = "DataError"
    got = _parsed(payload)
    if expected == "DataError":
        assert isinstance(got, str)
        assert got.startswith("DataError: f.json")
    else:
        assert got == expected


# --- strict: no repeated key, no other symbol, every error says where -------------------------


def _error(payload: bytes, **kwargs: str) -> DataError:
    with pytest.raises(DataError) as caught:
        parse_daily(payload, source_file="f.json", ingest_date=INGEST, **kwargs)
    return caught.value


def _strict(doc: bytes) -> bytes:
    """``doc`` off the vendor's layout (the series is not its last member): the strict decoder
    reads it."""
    edited = doc.replace(b"}\n}", b'},\n  "Note": "x"\n}')
    assert edited != doc
    return edited


REPEATS = {
    # name: (edit of VENDOR, fields, message)
    "date": (
        (b'"2024-01-02": {', b'"2024-01-03": {'),
        {"symbol": "ABC", "date": "2024-01-03", "field": "timestamp"},
        "f.json: ABC 2024-01-03: date repeated in the time series",
    ),
    "field in a bar": (
        (b'"2. high": "10.0001"', b'"1. open": "1.0000"'),
        {"symbol": "ABC", "date": "2024-01-02", "field": "open"},
        "f.json: ABC 2024-01-02: field '1. open' repeated in the bar",
    ),
    "symbol in the header": (
        (b'"2. Symbol": "ABC"', b'"2. Symbol": "ABC", "2. Symbol": "XYZ"'),
        {"field": "symbol"},
        "f.json: key '2. Symbol' repeated in Meta Data",
    ),
    "the series": (
        (b'"Time Series (Daily)": {', b'"Time Series (Daily)": {}, "Time Series (Daily)": {'),
        {"symbol": "ABC"},
        "f.json: ABC: key 'Time Series (Daily)' repeated in the document",
    ),
}


@pytest.mark.parametrize("layout", ["vendor", "strict"])
@pytest.mark.parametrize("name", list(REPEATS))
def test_a_repeated_key_is_refused_naming_where(name: str, layout: str) -> None:
    """orjson (and most decoders) keep a repeated key's last value: a -99 % day could hide
    behind a repeated date. The strict path refuses it; the fast scan never takes it."""
    (old, new), fields, message = REPEATS[name]
    payload = VENDOR.replace(old, new, 1)
    assert payload != VENDOR
    payload = payload if layout == "vendor" else _strict(payload)
    assert _scan(payload) is None
    error = _error(payload)
    assert str(error).startswith(message)
    assert error.details() == {"file": "f.json", **fields, "hint": error.hint}
    assert error.hint


def test_the_same_document_without_the_repeat_is_read() -> None:
    """The control for the test above: the strict layout parses when no key repeats."""
    assert _scan(_strict(VENDOR)) is None
    assert _parsed(_strict(VENDOR)) == _oracle(VENDOR)


@pytest.mark.parametrize("payload", [VENDOR, _strict(VENDOR)], ids=["fast scan", "strict"])
def test_a_document_for_another_symbol_is_refused(payload: bytes) -> None:
    error = _error(payload, symbol="MSFT")
    assert "the document is for 'ABC'" in str(error)
    assert "named for MSFT" in str(error)
    assert (error.file, error.symbol, error.field) == ("f.json", "MSFT", "symbol")
    # The same symbol, however the vendor cased it, is the object's own.
    assert len(parse_daily(payload, source_file="f", ingest_date=INGEST, symbol="abc")) == 2


def test_an_empty_document_for_another_symbol_is_refused() -> None:
    doc = orjson.dumps({"Meta Data": {"2. Symbol": "ABC"}, "Time Series (Daily)": {}})
    assert _error(doc, symbol="MSFT").symbol == "MSFT"


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        (b"{not json", {}),
        (b"[1, 2]", {}),
        (orjson.dumps({"Time Series (Daily)": {}}), {"field": "symbol"}),
        (
            orjson.dumps({"Meta Data": {"2. Symbol": "ABC"}}),
            {"symbol": "ABC", "field": "Time Series (Daily)"},
        ),
        (
            orjson.dumps(
                {"Meta Data": {"2. Symbol": "ABC"}, "Time Series (Daily)": {"2024-01-02": [1]}}
            ),
            {"symbol": "ABC", "date": "2024-01-02"},
        ),
        (
            _doc({**GOOD, "4. close": "abc"}),
            {"symbol": "ABC", "date": "2024-01-02", "field": "close"},
        ),
        (
            _doc({k: v for k, v in GOOD.items() if k != "2. high"}),
            {"symbol": "ABC", "date": "2024-01-02", "field": "high"},
        ),
    ],
    ids=["malformed", "not an object", "no symbol", "no series", "bar a list", "text", "missing"],
)
def test_every_parse_error_carries_where_as_fields(payload: bytes, fields: dict[str, str]) -> None:
    assert _error(payload).details() == {"file": "f.json", **fields}


def test_non_finite_number_strings_are_read_as_such_for_the_gate() -> None:
    """The parser is lossless: "NaN" and "Infinity" are numbers to the cast; the quality gate
    and the cleanse reject them (a bare NaN, which JSON forbids, is malformed)."""
    payload = VENDOR.replace(b'"10.1234"', b'"NaN"').replace(b'"0.2500"', b'"Infinity"')
    df = parse_daily(payload, source_file="f.json", ingest_date=INGEST).df
    newest = df.row(-1, named=True)
    assert newest["open"] != newest["open"]
    assert newest["dividend_amount"] == float("inf")
    assert _error(VENDOR.replace(b'"10.1234"', b"NaN")).file == "f.json"


def test_a_repeat_cannot_hide_behind_nesting_the_checker_cannot_follow() -> None:
    """orjson reads 1,000 nested arrays, Python's ``json`` (which sees repeats) cannot: the
    document is refused rather than read with its repeated date unchecked."""
    deep = b"[" * 1000 + b"]" * 1000
    payload = VENDOR.replace(b'"2024-01-02": {', b'"2024-01-03": {').replace(
        b'"Meta Data": {', b'"x": ' + deep + b', "Meta Data": {'
    )
    assert orjson.loads(payload)["Time Series (Daily)"]  # valid JSON to the fast decoder
    error = _error(payload)
    assert "cannot check the document for repeated keys" in str(error)
    assert error.file == "f.json"
