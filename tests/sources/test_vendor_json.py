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


def _oracle(payload: bytes) -> list[tuple[object, ...]]:
    """Bars of a document as the JSON standard reads it (stdlib json), oldest first."""
    doc = json.loads(payload)
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
