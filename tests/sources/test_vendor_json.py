"""The vendor JSON shape: encode then parse is lossless; bad documents name file, date, field."""

from __future__ import annotations

import datetime as dt

import orjson
import polars as pl
import pytest

from fdp.errors import DataError
from fdp.records import StockRecord
from fdp.sources.vendor_json import encode_daily_adjusted, parse_daily

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
