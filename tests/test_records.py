"""Record schemas derive from the dataclasses; ``Frame`` refuses wrongly shaped tables."""

from __future__ import annotations

import dataclasses
import datetime as dt

import polars as pl
import pyarrow as pa
import pytest

from fdp import indicators
from fdp.errors import DataError
from fdp.records import CleansedRecord, EnrichedStockRecord, Frame, StockRecord, check

STOCK_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), False),
        pa.field("timestamp", pa.string(), False),
        *(pa.field(n, pa.float64(), True) for n in ("open", "high", "low", "close")),
        pa.field("adjusted_close", pa.float64(), True),
        pa.field("volume", pa.int64(), True),
        pa.field("dividend_amount", pa.float64(), True),
        pa.field("split_coefficient", pa.float64(), True),
        pa.field("source_file", pa.string(), False),
        pa.field("ingest_date", pa.date32(), False),
    ]
)


def test_stock_record_schema_is_the_contract() -> None:
    assert StockRecord.arrow_schema() == STOCK_SCHEMA
    assert StockRecord.names() == [f.name for f in dataclasses.fields(StockRecord)]


@pytest.mark.parametrize("record", [StockRecord, CleansedRecord, EnrichedStockRecord])
def test_arrow_and_polars_schemas_follow_the_dataclass_fields(record: type) -> None:
    arrow = record.arrow_schema()
    fields = [f.name for f in dataclasses.fields(record)]
    if record is EnrichedStockRecord:  # the registry's indicator columns follow P
        at = fields.index(indicators.P) + 1
        fields[at:at] = indicators.columns()
    assert arrow.names == fields
    polars = record.polars_schema()
    assert list(polars) == arrow.names
    assert pl.DataFrame(arrow.empty_table()).schema == polars


def test_enriched_record_has_the_seed_fields_and_calendar_types() -> None:
    schema = EnrichedStockRecord.arrow_schema()
    # the seed's 28, split_adjusted_close, ingest_date (lineage), the new built-in indicators
    assert len(schema) == 30 + len(indicators.BUILTINS) - 10
    assert all(schema.field(name).type == pa.float64() for name in indicators.columns())
    assert schema.field("ingest_date") == pa.field("ingest_date", pa.date32(), False)
    assert schema.field("trade_timestamp").type == pa.timestamp("us", tz="UTC")
    assert schema.field("day_of_week").type == pa.int32()
    assert not schema.field("volume").nullable
    assert schema.field("sma_5").nullable
    assert CleansedRecord.KEY == ("symbol", "trade_date")


def _rows() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "symbol": ["AAPL"],
            "timestamp": ["2024-01-02"],
            "open": [1.0],
            "high": [2.0],
            "low": [0.5],
            "close": [1.5],
            "adjusted_close": [None],
            "volume": [10],
            "dividend_amount": [0.0],
            "split_coefficient": [1.0],
            "source_file": ["f.json"],
            "ingest_date": [dt.date(2024, 1, 2)],
        },
        schema=StockRecord.polars_schema(),
    )


def test_frame_accepts_the_record_and_orders_its_columns() -> None:
    shuffled = _rows().select(reversed(StockRecord.names()))
    frame = Frame(StockRecord, shuffled.with_columns(pl.lit(1).alias("extra")))
    assert frame.df.columns == StockRecord.names()
    assert len(frame) == 1
    assert frame.to_arrow().schema == STOCK_SCHEMA
    assert len(Frame.empty(StockRecord)) == 0


def test_frame_rejects_a_missing_column_naming_it() -> None:
    with pytest.raises(DataError, match=r"batch-7: missing column\(s\) \['volume'\]"):
        Frame(StockRecord, _rows().drop("volume"), origin="batch-7")


def test_frame_rejects_a_mistyped_column_naming_it() -> None:
    bad = _rows().with_columns(pl.col("volume").cast(pl.Float64))
    with pytest.raises(DataError, match="'volume' is Float64, StockRecord needs Int64"):
        Frame(StockRecord, bad)


def test_frame_rejects_nulls_in_a_required_column() -> None:
    bad = _rows().with_columns(pl.lit(None, pl.String).alias("symbol"))
    with pytest.raises(DataError, match="'symbol' of StockRecord holds nulls"):
        check(StockRecord, bad)
