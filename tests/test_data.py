"""``fdp.read`` and ``fdp show``: the rows asked for, in every output, from the lake or the
warehouse, and errors that name what was wrong."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from click.testing import CliRunner
from polars.testing import assert_frame_equal

import fdp
from bars import land, random_bars, unvalidated
from fdp import lake
from fdp.calendar import sessions
from fdp.cli import output
from fdp.cli.data import SHOWN
from fdp.cli.main import main
from fdp.config import Settings
from fdp.data import ReadError, read
from fdp.indicators import computed_columns
from fdp.records import EnrichedStockRecord
from fdp.transform import transform
from fdp.warehouse.loader import load_run

DAYS = sessions(dt.date(2024, 1, 2), dt.date(2024, 4, 30))
SYMBOLS = ["AAA", "BBB", "CCC"]


@pytest.fixture
def curated(settings: Settings) -> Settings:
    land(settings, DAYS[-1], random_bars(SYMBOLS, DAYS, seed=3))
    transform(settings, DAYS[-1], gate=unvalidated(settings, DAYS[-1]))
    return settings


def test_a_read_returns_the_lakes_rows_sorted_with_the_key_first(curated: Settings) -> None:
    rows = fdp.read(settings=curated)
    stored = lake.scan(curated).collect()
    assert rows.columns[:2] == ["symbol", "trade_date"]
    assert sorted(rows.columns) == sorted(EnrichedStockRecord.names())
    assert_frame_equal(rows, stored.select(rows.columns).sort(lake.KEY))
    assert rows["symbol"].is_sorted()
    assert rows.height == len(SYMBOLS) * len(DAYS)


def test_symbols_dates_and_columns_narrow_the_read(curated: Settings) -> None:
    start, end = dt.date(2024, 2, 10), dt.date(2024, 3, 5)
    rows = read(
        ["bbb", "AAA"], start.isoformat(), end, ["sma_20", "close", "sma_20"], settings=curated
    )
    assert rows.columns == ["symbol", "trade_date", "sma_20", "close"]
    assert rows["symbol"].unique().sort().to_list() == ["AAA", "BBB"]
    assert rows["trade_date"].min() >= start
    assert rows["trade_date"].max() <= end
    expected = (
        lake.scan(curated)
        .filter(pl.col("symbol").is_in(["AAA", "BBB"]), pl.col("trade_date").is_between(start, end))
        .select(rows.columns)
        .sort(lake.KEY)
        .collect()
    )
    assert_frame_equal(rows, expected)


def test_pandas_and_arrow_on_request(curated: Settings) -> None:
    polars_rows = read("AAA", columns=list(computed_columns()), settings=curated)
    frame = read("AAA", columns=list(computed_columns()), output="pandas", settings=curated)
    table = read("AAA", columns=list(computed_columns()), output="arrow", settings=curated)
    assert isinstance(frame, pd.DataFrame)
    assert isinstance(table, pa.Table)
    assert_frame_equal(pl.from_pandas(frame), polars_rows, check_dtypes=False)
    assert table.equals(polars_rows.to_arrow())


def test_a_month_read_opens_only_that_months_file(curated: Settings) -> None:
    """Files outside the range are never opened: a corrupt one does not disturb the read."""
    Path(lake.partition_url(curated, (2024, 1))).write_bytes(b"not parquet")
    rows = read(start=dt.date(2024, 3, 1), end=dt.date(2024, 3, 31), settings=curated)
    assert rows["trade_date"].dt.month().unique().to_list() == [3]


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"symbols": ["AAA", "ZZZ", "QQQ"]}, "unknown symbol(s) ZZZ, QQQ"),
        ({"symbols": "AAA", "start": dt.date(2025, 1, 1)}, "AAA has 2024-01-02 to 2024-04-30"),
        ({"columns": ["close", "sma_7", "rsi"]}, "unknown column(s) 'sma_7', 'rsi'"),
        ({"start": "2024-03-02", "end": "2024-03-01"}, "start 2024-03-02 is after end 2024-03-01"),
        ({"start": "2024-02-31"}, "start '2024-02-31' is not a date"),
        ({"symbols": "[red]A"}, "not a ticker: '[RED]A'"),
        ({"symbols": []}, "no symbols given"),
        ({"start": "2030-01-01"}, "no rows in the lake between 2030-01-01"),
        ({"as_of": "2023-12-31"}, "as of ingest date 2023-12-31"),
        ({"output": "numpy"}, "unknown output 'numpy'"),
    ],
)
def test_bad_reads_name_what_is_wrong(
    curated: Settings, kwargs: dict[str, object], named: str
) -> None:
    with pytest.raises(ReadError) as caught:
        read(settings=curated, **kwargs)  # type: ignore[call-overload]
    assert named in str(caught.value)


def test_an_empty_lake_is_an_error_not_an_empty_frame(settings: Settings) -> None:
    with pytest.raises(ReadError, match="no rows in the lake"):
        read(settings=settings)


def test_the_warehouse_returns_the_lakes_rows(curated: Settings) -> None:
    load_run(curated, DAYS[-1])
    columns = [c for c in EnrichedStockRecord.names() if c not in lake.KEY]
    got = read(["CCC", "AAA"], DAYS[5], DAYS[60], columns, source="warehouse", settings=curated)
    assert_frame_equal(got, read(["CCC", "AAA"], DAYS[5], DAYS[60], columns, settings=curated))
    with pytest.raises(ReadError, match="unknown symbol"):
        read("ZZZ", source="warehouse", settings=curated)


def test_fdp_show_prints_the_bar_and_the_main_indicators(
    curated: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # a wide terminal: every column readable
    output.console.cache_clear()
    done = CliRunner().invoke(main, ["show", "aaa", "--start", "2024-04-01", "--limit", "5"])
    assert done.exit_code == 0, done.output
    assert "AAA 2024-04-01 to 2024-04-30" in done.output
    for name in ("close", *SHOWN):
        assert name in done.output
    assert "last 5 of 22 rows" in done.output
    assert "2024-04-30" in done.output


def test_fdp_show_errors_exit_2_and_print_input_as_text(curated: Settings) -> None:
    unknown = CliRunner().invoke(main, ["show", "ZZZ"])
    assert unknown.exit_code == 2
    assert "unknown symbol(s) ZZZ" in unknown.output
    column = CliRunner().invoke(main, ["show", "AAA", "--columns", "close,[bold]x"])
    assert column.exit_code == 2
    assert "'[bold]x'" in column.output


def test_a_lake_on_an_object_store_reads_the_same(
    aws_env: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """On S3 (moto's server: a LOCAL STAND-IN for AWS) through the lake's own endpoint setting."""
    import boto3

    boto3.client("s3", endpoint_url=aws_env, region_name="us-east-1").create_bucket(Bucket="fdp")
    monkeypatch.setenv("FDP_S3_ENDPOINT_URL", aws_env)
    remote = Settings(data_dir="s3://fdp/data", s3_endpoint_url=aws_env)
    local = Settings(data_dir=str(tmp_path / "local"))
    for where in (remote, local):
        land(where, DAYS[-1], random_bars(SYMBOLS, DAYS, seed=3))
        transform(where, DAYS[-1], gate=unvalidated(where, DAYS[-1]))
    values = [c for c in EnrichedStockRecord.names() if c != "processing_timestamp"]
    for asked in ({"symbols": "BBB"}, {"start": DAYS[30], "end": DAYS[40], "as_of": DAYS[-1]}):
        assert_frame_equal(
            read(columns=values, settings=remote, **asked),  # type: ignore[call-overload]
            read(columns=values, settings=local, **asked),  # type: ignore[call-overload]
        )


def test_a_file_written_before_a_column_existed_reads_it_as_null(curated: Settings) -> None:
    """The record gains columns over time; a partition written before reads them as null."""
    path = lake.partition_url(curated, (2024, 2))
    pl.read_parquet(path).drop("volatility_20d").write_parquet(path)
    rows = read("AAA", columns=["close", "volatility_20d"], settings=curated)
    february = rows.filter(pl.col("trade_date").dt.month() == 2)
    assert february["volatility_20d"].null_count() == february.height > 0
    assert rows.filter(pl.col("trade_date").dt.month() == 4)["volatility_20d"].null_count() == 0
