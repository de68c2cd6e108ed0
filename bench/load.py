"""load: curated rows into the warehouse, merge and reconciliation included.

Targets: DuckDB 10,000,000 rows from the lake in under 10 s; PostgreSQL 2,000,000 rows at
>= 300,000 rows/s, reported beside a bare binary COPY of the same rows (the server's ceiling).
The input is a synthetic EnrichedStockRecord frame (numpy) written as a hive lake.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from bench.harness import Measurement, measure
from fdp import lake
from fdp.config import Settings
from fdp.records import EnrichedStockRecord, Frame
from fdp.warehouse import connect, load_rows, load_run, migrate, pgbinary, read_changes

RUN_DATE = dt.date(2024, 12, 31)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duckdb-rows", type=int, default=10_000_000)
    parser.add_argument("--postgres-rows", type=int, default=2_000_000, help="0 skips PostgreSQL")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")


def synthetic(rows: int, seed: int = 0) -> pl.DataFrame:
    """``rows`` EnrichedStockRecord rows: symbols of 2,500 weekdays each, random values."""
    days = 2_500
    symbols = max(1, rows // days)
    rng = np.random.default_rng(seed)
    n = symbols * days
    tickers = np.array([f"S{i:05d}" for i in range(symbols)])
    dates = np.datetime64("2015-01-05") + np.arange(days * 7 // 5 + 7).astype("timedelta64[D]")
    dates = dates[np.is_busday(dates)][:days]
    sym = np.repeat(tickers, days)
    day = np.tile(dates, symbols)
    close = rng.lognormal(4, 0.5, n)

    def noisy(share_null: float = 0.0) -> pl.Series:
        values = close * rng.normal(1, 0.01, n)
        mask = rng.random(n) < share_null if share_null else None
        return (
            pl.Series(values).set(pl.Series(mask), None) if mask is not None else pl.Series(values)
        )

    df = pl.DataFrame(
        {
            "symbol": sym,
            "trade_date": day,
            "open": noisy(),
            "high": noisy(),
            "low": noisy(),
            "close": close,
            "adjusted_close": close,
            "volume": rng.integers(1_000, 10**8, n),
            "dividend_amount": np.zeros(n),
            "split_coefficient": np.ones(n),
            "split_adjusted_close": close,
            "daily_return": rng.normal(0, 2, n),
            "daily_range": rng.random(n),
            "daily_range_pct": rng.random(n),
            "volume_change_pct": rng.normal(0, 20, n),
            "sma_5": noisy(0.01),
            "sma_20": noisy(0.02),
            "sma_50": noisy(0.05),
            "ema_12": noisy(0.01),
            "ema_26": noisy(0.02),
            "volatility_20d": pl.Series(rng.random(n) * 3),
        }
    ).with_columns(pl.col("trade_date").cast(pl.Date))
    d = pl.col("trade_date")
    df = df.with_columns(
        (pl.col("symbol") + "_" + d.dt.strftime("%Y%m%d")).alias("price_id"),
        d.cast(pl.Datetime("us", "UTC")).dt.offset_by("21h").alias("trade_timestamp"),
        d.dt.year().alias("year"),
        d.dt.quarter().alias("quarter"),
        d.dt.month().alias("month"),
        d.dt.day().alias("day"),
        d.dt.weekday().alias("day_of_week"),
        pl.lit(dt.datetime(2025, 1, 1, tzinfo=dt.UTC)).alias("processing_timestamp"),
    )
    schema = EnrichedStockRecord.polars_schema()
    # Columns the record gained after this generator was written get a plausible value of
    # their type, so the benchmark follows the record without edits.
    filler = {pl.Date: d, pl.Datetime: pl.col("processing_timestamp"), pl.String: pl.col("symbol")}
    missing = [
        next((e for t, e in filler.items() if dtype == t), pl.lit(1)).cast(dtype).alias(name)
        for name, dtype in schema.items()
        if name not in df.columns
    ]
    return df.with_columns(missing).select([pl.col(c).cast(t) for c, t in schema.items()])


def _lake(root: Path, rows: int) -> Settings:
    settings = Settings(data_dir=str(root / "data"), warehouse_url=f"duckdb:///{root}/wh.duckdb")
    frame = Frame(EnrichedStockRecord, synthetic(rows))
    lake.upsert(settings, [frame])
    lake.write_changes(settings, RUN_DATE, frame.df)
    return settings


@contextmanager
def _step(step: str, rows: int, out: list[Measurement]) -> Iterator[dict[str, Any]]:
    """``measure`` noting the 1-minute load average as the step ends: other work on the
    machine moves these numbers more than most changes do."""
    with measure("load", step, rows, out) as extra:
        yield extra
        extra["load1"] = round(os.getloadavg()[0], 2)


def _duckdb(root: Path, rows: int, out: list[Measurement]) -> None:
    settings = _lake(root / "duck", rows)
    with _step("duckdb: lake read only", rows, out):
        read_changes(settings, RUN_DATE)
    with _step("duckdb: load_run (empty table)", rows, out):
        load_run(settings, RUN_DATE)
    with _step("duckdb: load_run again (replace, rows unchanged)", rows, out):
        load_run(settings, RUN_DATE)
    changed = _restated(read_changes(settings, RUN_DATE))
    warehouse = connect(settings.warehouse_url, settings)
    with _step("duckdb: load_rows, every row changed (replace)", rows, out):
        load_rows(warehouse, changed, "bench")


def _restated(rows: Frame[EnrichedStockRecord]) -> Frame[EnrichedStockRecord]:
    """``rows`` with every volume changed: a batch that replaces each stored row."""
    return Frame(EnrichedStockRecord, rows.df.with_columns(pl.col("volume") + 1))


def _postgres(root: Path, rows: int, base_url: str, out: list[Measurement]) -> None:
    """The loader beside bare binary COPYs of the same bytes (encoded before the clock starts)
    into a table without the primary key (the server's ceiling), into one with it, and again
    over the same keys after deleting them (a replace's ceiling); each step starts after a
    CHECKPOINT, so none pays for the previous one's dirty pages."""
    import psycopg

    name = f"fdp_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base_url, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}")
    url = base_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        frame = Frame(EnrichedStockRecord, synthetic(rows, seed=1))
        warehouse = connect(url, Settings(data_dir=str(root)))
        migrate(warehouse)
        encoded = b"".join(
            [
                pgbinary.HEADER,
                *(pgbinary.encode(c) for c in pgbinary.chunks(frame.df)),
                pgbinary.TRAILER,
            ]
        )
        columns = ", ".join(frame.df.columns)
        with psycopg.connect(url, autocommit=True) as con:
            for table, like in (("bare_copy", ""), ("bare_copy_keyed", " INCLUDING INDEXES")):
                con.execute(f"CREATE TABLE {table} (LIKE fact_stock_prices{like})")
                con.execute("CHECKPOINT")
                step = f"postgres: bare binary COPY{', primary key' if like else ''}"
                copy_sql = f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)"
                with _step(step, rows, out) as extra:
                    with con.transaction(), con.cursor() as cur, cur.copy(copy_sql) as copy:
                        copy.write(encoded)
                    extra["mib"] = round(len(encoded) / 2**20)
                if like:
                    con.execute("CHECKPOINT")
                    with (
                        _step("postgres: bare DELETE + COPY of the same keys", rows, out),
                        con.transaction(),
                        con.cursor() as cur,
                    ):
                        cur.execute(f"DELETE FROM {table}")
                        with cur.copy(copy_sql) as copy:
                            copy.write(encoded)
                con.execute(f"DROP TABLE {table}")
            steps = [
                ("load_rows (empty table)", frame),
                ("load_rows again (replace, rows unchanged)", frame),
                ("load_rows, every row changed (replace)", _restated(frame)),
            ]
            for step, batch in steps:
                con.execute("CHECKPOINT")
                with _step(f"postgres: {step}", rows, out):
                    load_rows(warehouse, batch, "bench")
    finally:
        with psycopg.connect(base_url, autocommit=True) as con:
            con.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def run(args: argparse.Namespace) -> list[Measurement]:
    out: list[Measurement] = []
    root = Path(tempfile.mkdtemp(prefix="fdp-bench-load-"))
    try:
        if args.postgres_rows:
            _postgres(root, args.postgres_rows, args.postgres_url, out)
        if args.duckdb_rows:
            _duckdb(root, args.duckdb_rows, out)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return out
