"""The curated lake layout: hive partitions any reader understands, replaced one at a time."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from bars import land, random_bars, unvalidated
from fdp import lake
from fdp.calendar import sessions
from fdp.config import Settings
from fdp.transform import transform
from fdp.warehouse.loader import read_changes

DAYS = sessions(dt.date(2023, 1, 1), dt.date(2023, 4, 28))
NOW = dt.datetime(2023, 5, 1, 12, tzinfo=dt.UTC)


def digests(settings: Settings) -> dict[str, str]:
    root = Path(lake.table_url(settings))
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_partitions_are_hive_files_that_pyarrow_and_duckdb_read(settings: Settings) -> None:
    land(settings, DAYS[-1], random_bars(["AAA", "BBB"], DAYS))
    transform(settings, DAYS[-1], gate=unvalidated(settings, DAYS[-1]))
    assert lake.partitions(settings) == [(2023, m) for m in (1, 2, 3, 4)]
    path = Path(lake.partition_url(settings, (2023, 2)))
    assert (
        path.relative_to(lake.table_url(settings)).as_posix() == "year=2023/month=02/part-0.parquet"
    )
    table = ds.dataset(lake.table_url(settings), format="parquet", partitioning="hive").to_table()
    assert table.num_rows == 2 * len(DAYS)
    con = duckdb.connect()
    glob = f"{lake.table_url(settings)}/**/*.parquet"
    rows = con.sql(
        "select count(*), min(month), max(year) from read_parquet(?,"
        " hive_types={'year': INT, 'month': INT})",
        params=[glob],
    ).fetchall()
    assert rows == [(2 * len(DAYS), 1, 2023)]
    scanned = lake.scan(settings).collect()
    assert scanned.columns == lake.EnrichedStockRecord.names()
    in_file = pl.read_parquet(path)
    assert "year" not in in_file.columns
    assert in_file.select("symbol", "trade_date").equals(
        in_file.select("symbol", "trade_date").sort("symbol", "trade_date")
    )


def test_a_daily_run_replaces_only_its_partition(settings: Settings) -> None:
    bars = random_bars(["AAA", "BBB"], DAYS)
    land(settings, DAYS[-2], bars.filter(pl.col("trade_date") < DAYS[-1]))
    transform(settings, DAYS[-2], gate=unvalidated(settings, DAYS[-2]))
    before = digests(settings)
    land(settings, DAYS[-1], bars.filter(pl.col("trade_date") == DAYS[-1]))
    result = transform(settings, DAYS[-1], gate=unvalidated(settings, DAYS[-1]))
    after = digests(settings)
    assert result.partitions_replaced == 1
    assert result.rows_written == 2
    changed = {k for k in after if before.get(k) != after[k]}
    assert changed == {"year=2023/month=04/part-0.parquet"}
    rows = read_changes(settings, DAYS[-1]).df
    assert rows.select("symbol", "trade_date").rows() == [("AAA", DAYS[-1]), ("BBB", DAYS[-1])]


def test_read_history_returns_the_state_rows_and_everything_after(settings: Settings) -> None:
    land(settings, DAYS[-1], random_bars(["AAA", "BBB"], DAYS))
    transform(settings, DAYS[-1], gate=unvalidated(settings, DAYS[-1]))
    wanted = pl.DataFrame(
        {"symbol": ["AAA", "BBB"], "from_date": [DAYS[-3], None]},
        schema={"symbol": pl.String, "from_date": pl.Date},
    )
    history = lake.read_history(settings, wanted, rows_before=5)
    aaa = history.filter(pl.col("symbol") == "AAA")["trade_date"].to_list()
    assert aaa == DAYS[-8:]
    assert history.filter(pl.col("symbol") == "BBB").height == len(DAYS)


def test_the_lake_on_s3_equals_the_local_lake_moto_local_standin(
    settings: Settings, aws_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New partitions are staged in memory and PUT once; existing ones are merged."""
    import boto3

    boto3.client("s3", endpoint_url=aws_env, region_name="us-east-1").create_bucket(Bucket="lake")
    monkeypatch.setenv("FDP_S3_ENDPOINT_URL", aws_env)
    remote = Settings(data_dir="s3://lake/data", s3_endpoint_url=aws_env)
    bars = random_bars(["AAA", "BBB"], DAYS, seed=3)
    for target in (settings, remote):
        land(target, DAYS[-2], bars.filter(pl.col("trade_date") < DAYS[-1]))
        land(target, DAYS[-1], bars.filter(pl.col("trade_date") == DAYS[-1]))
        transform(target, DAYS[-2], gate=unvalidated(target, DAYS[-2]), now=NOW)
        transform(target, DAYS[-1], gate=unvalidated(target, DAYS[-1]), now=NOW)
    assert lake.partitions(remote) == lake.partitions(settings) == [(2023, m) for m in (1, 2, 3, 4)]
    for partition in lake.partitions(settings):
        local = lake.read_partition(settings, partition)
        assert lake.read_partition(remote, partition).equals(local)
    assert lake.read_partition(remote, (2023, 4))["trade_date"].max() == DAYS[-1]
    # The whole-table scan (reports, the loader, fdp.read) takes the endpoint from the
    # settings too, not from AWS's own environment variables.
    assert "AWS_ENDPOINT_URL" not in os.environ
    assert lake.scan(remote).collect().equals(lake.scan(settings).collect())


def test_many_slices_with_a_few_rows_per_partition_give_the_one_slice_lake(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six slices of two symbols each give every month ~40 rows at a time: the rows wait
    across slices (copied out of them) until a row group's worth is there."""
    bars = random_bars([f"S{i:02d}" for i in range(12)], DAYS, seed=5)
    whole = Settings(data_dir=str(tmp_path / "whole"))
    for target in (whole, settings):
        land(target, DAYS[-1], bars)
    transform(whole, DAYS[-1], gate=unvalidated(whole, DAYS[-1]), now=NOW)
    monkeypatch.setattr("fdp.transform.plan.SLICE_ROWS", 2 * len(DAYS))
    monkeypatch.setattr(lake, "ROW_GROUP_MIN_ROWS", 100)
    monkeypatch.setattr(lake, "ROW_GROUP_ROWS", 150)
    transform(settings, DAYS[-1], gate=unvalidated(settings, DAYS[-1]), now=NOW)
    assert lake.partitions(settings) == lake.partitions(whole)
    for partition in lake.partitions(whole):
        # Rolling windows over differently cut columns round differently, far inside 1e-9.
        assert_frame_equal(
            lake.read_partition(settings, partition),
            lake.read_partition(whole, partition),
            rel_tol=1e-9,
            abs_tol=1e-12,
        )
        meta = pq.ParquetFile(lake.partition_url(settings, partition)).metadata
        groups = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        assert len(groups) > 1
        assert max(groups) <= 150
        assert min(groups[:-1]) >= 100
