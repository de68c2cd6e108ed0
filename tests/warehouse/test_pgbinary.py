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
            for piece in pgbinary.rows(rows):
                copy.write(piece.data)
            copy.write(pgbinary.TRAILER)
        cur = con.execute(f"SELECT {columns} FROM fact_stock_prices ORDER BY symbol, trade_date")
        got = pl.DataFrame(cur.fetchall(), schema=EnrichedStockRecord.polars_schema(), orient="row")
    assert_frame_equal(got, rows.sort("symbol", "trade_date"))
