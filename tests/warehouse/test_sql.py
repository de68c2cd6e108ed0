"""The generated SQL: Redshift's statements checked as text and, where PostgreSQL accepts
the same text, executed on PostgreSQL; the checksum and binary COPY checked on their own."""

from __future__ import annotations

import datetime as dt

import polars as pl
import psycopg
import pytest
from wh_helpers import make_rows

from fdp.errors import ConfigError
from fdp.records import EnrichedStockRecord
from fdp.warehouse import sql
from fdp.warehouse.redshift import Target, bind, copy_statement

ROLE = "arn:aws:iam::123456789012:role/fdp-redshift-copy"


def test_redshift_fact_table_is_wide_and_distributed_by_symbol() -> None:
    ddl = sql.create_fact(sql.REDSHIFT)
    assert "sma_5 DOUBLE PRECISION" in ddl
    assert "volume BIGINT NOT NULL" in ddl
    assert "price_id VARCHAR(65535) NOT NULL" in ddl
    assert "trade_timestamp TIMESTAMPTZ NOT NULL" in ddl
    assert "DECIMAL" not in ddl
    assert ddl.endswith("DISTKEY (symbol) SORTKEY (trade_date, symbol)")
    assert all(f"\n    {name} " in ddl for name in EnrichedStockRecord.names())


def test_redshift_copy_takes_only_plain_locations_and_roles() -> None:
    statement = copy_statement("s3://fdp-bucket/staging/run=1/x.parquet", ROLE)
    assert statement.startswith("COPY stage_stock_prices (price_id, symbol,")
    assert statement.endswith(
        f"FROM 's3://fdp-bucket/staging/run=1/x.parquet' IAM_ROLE '{ROLE}' FORMAT AS PARQUET"
    )
    with pytest.raises(ConfigError, match="s3://"):
        copy_statement("s3://bucket/x' IAM_ROLE 'evil", ROLE)
    with pytest.raises(ConfigError, match="iam_role"):
        copy_statement("s3://fdp-bucket/x.parquet", "arn:aws:iam::1:role/x'; DROP")


def test_redshift_parameters_are_named_and_null_is_a_keyword() -> None:
    text, params = bind(
        sql.insert_pipeline_run(sql.REDSHIFT), ["load", dt.date(2024, 1, 2)] + [None] * 9
    )
    assert ":p1, :p2, NULL" in text
    assert ":p3" not in text
    assert params == [{"name": "p1", "value": "load"}, {"name": "p2", "value": "2024-01-02"}]


def test_redshift_url_names_workgroup_or_cluster() -> None:
    target = Target.parse(
        f"redshift://analyst@fdp-wg/market?iam_role={ROLE}&staging=s3://b/p/&serverless=true"
    )
    assert target.where() == {"Database": "market", "WorkgroupName": "fdp-wg"}
    cluster = Target.parse(
        f"redshift://analyst@fdp-cluster/market?iam_role={ROLE}&staging=s3://b/p"
    )
    assert cluster.where() == {
        "Database": "market",
        "ClusterIdentifier": "fdp-cluster",
        "DbUser": "analyst",
    }
    with pytest.raises(ConfigError, match="staging"):
        Target.parse("redshift://fdp-cluster/market?iam_role=x")


@pytest.mark.postgres
def test_redshift_merge_statements_run_on_postgres_and_deduplicate(pg_url: str) -> None:
    """The DDL (minus Redshift's distribution clause) and the whole merge, with a staging
    table holding a key twice as a raw COPY may: the latest processed row must win."""
    old = make_rows(["AAA"], [dt.date(2024, 1, 2), dt.date(2024, 1, 3)], seed=1)
    stale = make_rows(["AAA"], [dt.date(2024, 1, 3)], seed=2, processed=1)
    latest = make_rows(["AAA"], [dt.date(2024, 1, 3)], seed=3, processed=5)
    ddl = sql.create_fact(sql.REDSHIFT).removesuffix(sql.REDSHIFT.fact_suffix)
    columns = ", ".join(EnrichedStockRecord.names())
    with psycopg.connect(pg_url) as con:
        con.execute(ddl)
        _insert(con, "fact_stock_prices", columns, old)
        con.execute(sql.create_stage())
        _insert(con, "stage_stock_prices", columns, pl.concat([latest, stale]))
        con.execute(sql.delete_staged_keys())
        con.execute(sql.insert_staged_deduplicated())
        con.execute(sql.drop_stage())
        got = con.execute(
            "SELECT trade_date, close, processing_timestamp FROM fact_stock_prices ORDER BY 1"
        ).fetchall()
    want = pl.concat([old.head(1), latest]).select("trade_date", "close", "processing_timestamp")
    assert got == want.rows()


def _insert(
    con: psycopg.Connection[tuple[object, ...]], table: str, columns: str, rows: pl.DataFrame
) -> None:
    marks = ", ".join(["%s"] * rows.width)
    with con.cursor() as cur:
        cur.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows.rows())


@pytest.mark.postgres
def test_redshift_reconciliation_statements_run_on_postgres_with_a_stand_in_hash(
    pg_url: str,
) -> None:
    """Redshift's FNV_HASH cannot run here: a PostgreSQL function hashing the value's text
    STANDS IN for it. Reconciliation's Redshift statements then run as sent, fingerprint the
    staged (lake) rows as the stored ones, and tell NULL from zero and swapped columns apart."""
    rows = make_rows(["AAA", "BBB"], [dt.date(2024, 1, 2), dt.date(2024, 1, 3)], seed=5)
    ddl = sql.create_fact(sql.REDSHIFT).removesuffix(sql.REDSHIFT.fact_suffix)
    columns = ", ".join(EnrichedStockRecord.names())
    d = sql.REDSHIFT
    with psycopg.connect(pg_url) as con:
        con.execute(
            "CREATE FUNCTION fnv_hash(v anyelement, seed bigint) RETURNS bigint "
            "LANGUAGE sql IMMUTABLE AS $$ SELECT hashtextextended(v::text, seed) $$"
        )
        con.execute(ddl)
        _insert(con, "fact_stock_prices", columns, rows)
        con.execute(sql.create_stage())
        _insert(con, "stage_stock_prices", columns, rows)
        lake = con.execute(sql.lake_fingerprints(d) + " ORDER BY 1, 2").fetchall()
        stored = con.execute(sql.fingerprints(d, over_ranges=False) + " ORDER BY 1, 2").fetchall()
        assert lake == stored
        assert len({fp for *_, fp in lake}) == rows.height
        segments = con.execute(sql.segment_fingerprints(d, over_ranges=False)).fetchall()
        assert sorted((s, n) for s, n, _ in segments) == [("AAA", 2), ("BBB", 2)]
        null = rows.filter(pl.col("sma_50").is_null()).row(0, named=True)
        other = rows.filter(
            (pl.col("price_id") != null["price_id"]) & (pl.col("open") != pl.col("high"))
        ).row(0, named=True)
        where = "WHERE symbol = %s AND trade_date = %s"
        con.execute(
            f"UPDATE fact_stock_prices SET sma_50 = 0 {where}", (null["symbol"], null["trade_date"])
        )
        con.execute(
            f"UPDATE fact_stock_prices SET open = high, high = open {where}",
            (other["symbol"], other["trade_date"]),
        )
        after = con.execute(sql.fingerprints(d, over_ranges=False) + " ORDER BY 1, 2").fetchall()
    moved = {(s, day) for (s, day, fp), (*_, was) in zip(after, lake, strict=True) if fp != was}
    assert moved == {(null["symbol"], null["trade_date"]), (other["symbol"], other["trade_date"])}
