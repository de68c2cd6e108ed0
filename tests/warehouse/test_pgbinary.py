"""Binary COPY encoding checked by PostgreSQL itself: what it stores is what was sent."""

from __future__ import annotations

import datetime as dt

import polars as pl
import psycopg
import pytest
from polars.testing import assert_frame_equal
from wh_helpers import make_rows

from fdp.records import EnrichedStockRecord
from fdp.warehouse import pgbinary, sql


@pytest.mark.postgres
def test_binary_copy_round_trips_empty_text_nulls_and_extremes(pg_url: str) -> None:
    rows = make_rows(["A", "BB.B", "CCCCCCCCCC"], [dt.date(1999, 12, 31), dt.date(2000, 1, 1)])
    rows = rows.with_columns(
        pl.when(pl.col("symbol") == "A").then(pl.lit("")).otherwise("price_id").alias("price_id"),
        pl.when(pl.col("symbol") == "A")
        .then(pl.lit(-1.5e-308))
        .otherwise("sma_50")
        .alias("sma_50"),
        pl.when(pl.col("symbol") == "A")
        .then(pl.lit(dt.datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=dt.UTC)))
        .otherwise("processing_timestamp")
        .alias("processing_timestamp"),
    )
    columns = ", ".join(EnrichedStockRecord.names())
    with psycopg.connect(pg_url) as con:
        con.execute(sql.create_fact(sql.POSTGRES))
        with (
            con.cursor() as cur,
            cur.copy(f"COPY fact_stock_prices ({columns}) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.write(pgbinary.HEADER)
            copy.write(pgbinary.encode(rows))
            copy.write(pgbinary.TRAILER)
        cur = con.execute(f"SELECT {columns} FROM fact_stock_prices ORDER BY symbol, trade_date")
        got = pl.DataFrame(cur.fetchall(), schema=EnrichedStockRecord.polars_schema(), orient="row")
    assert_frame_equal(got, rows.sort("symbol", "trade_date"))


def _copy_back(
    pg_url: str, ddl: str, frame: pl.DataFrame, chunk_rows: int
) -> list[tuple[object, ...]]:
    """COPY ``frame`` encoded in chunks of ``chunk_rows`` into a new table ``t`` (``ddl``'s
    columns plus a serial), and read it back in arrival order."""
    with psycopg.connect(pg_url) as con:
        con.execute(f"CREATE TABLE t ({ddl}, arrival BIGSERIAL)")
        with (
            con.cursor() as cur,
            cur.copy(f"COPY t ({', '.join(frame.columns)}) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.write(pgbinary.HEADER)
            for chunk in pgbinary.chunks(frame, chunk_rows):
                copy.write(pgbinary.encode(chunk))
            copy.write(pgbinary.TRAILER)
        return con.execute(f"SELECT {', '.join(frame.columns)} FROM t ORDER BY arrival").fetchall()


@pytest.mark.postgres
def test_rows_arrive_in_order_with_nullable_text_of_every_length(pg_url: str) -> None:
    """Text of varying byte length (multi-byte UTF-8, empty, NULL; a column of nothing else)
    beside NULL integers, dates and timestamps: every chunk squeezes its slots differently,
    rows keep their order."""
    n = 1_000
    texts = ["", "é", "€uro", None, "x" * 37, "naïve; 'quoted'"]
    frame = pl.DataFrame(
        {
            "label": [texts[i % len(texts)] for i in range(n)],
            "blank": [None if i % 3 else "" for i in range(n)],
            "constant": ["same"] * n,
            "amount": [None if i % 7 == 0 else i * 10**12 for i in range(n)],
            "small": [None if i % 5 == 0 else -i for i in range(n)],
            "day": [
                None if i % 11 == 0 else dt.date(1990, 1, 1) + dt.timedelta(i) for i in range(n)
            ],
            "at": [
                None
                if i % 13 == 0
                else dt.datetime(1999, 12, 31, 23, tzinfo=dt.UTC) + dt.timedelta(seconds=i)
                for i in range(n)
            ],
            "ratio": [None if i % 3 == 0 else i / 7 for i in range(n)],
        },
        schema={
            "label": pl.String,
            "blank": pl.String,
            "constant": pl.String,
            "amount": pl.Int64,
            "small": pl.Int32,
            "day": pl.Date,
            "at": pl.Datetime("us", "UTC"),
            "ratio": pl.Float64,
        },
    )
    ddl = (
        "label TEXT, blank TEXT, constant TEXT, amount BIGINT, small INTEGER, day DATE, "
        "at TIMESTAMPTZ, ratio DOUBLE PRECISION"
    )
    got = _copy_back(pg_url, ddl, frame, chunk_rows=97)
    assert got == frame.rows()


def test_a_column_without_a_binary_encoding_is_named() -> None:
    with pytest.raises(TypeError, match="'flag'"):
        pgbinary.encode(pl.DataFrame({"flag": [True]}))
