"""load: curated rows into the warehouse, merge and reconciliation included.

Each load is reported beside the bare work it must keep up with, measured in the same run right
before it (``ratio`` in the step's numbers, with the 1-minute load average: the machine is
shared, so only ratios from one run compare). Targets:

- PostgreSQL, 2M rows into an empty table, the whole protocol: at least 1.0x the speed of a
  bare binary COPY of the same bytes into a table with the primary key;
- PostgreSQL, 2M rows every one changed: at least 1.0x a bare DELETE + COPY of the same keys;
  the same rows loaded unchanged write nothing;
- DuckDB, 2M rows from the lake: at most 2x the time of the lake read alone; 10M rows under
  2 GiB of peak memory.

The input is a synthetic EnrichedStockRecord frame (numpy) written as a hive lake.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
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
    parser.add_argument(
        "--duckdb-rows",
        type=int,
        nargs="*",
        default=[2_000_000, 10_000_000],
        help="one DuckDB run per size (none skips DuckDB)",
    )
    parser.add_argument("--postgres-rows", type=int, default=2_000_000, help="0 skips PostgreSQL")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "--repeat", type=int, default=1, help="PostgreSQL runs, each on a new database"
    )


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


def _settings(root: Path) -> Settings:
    return Settings(data_dir=str(root / "data"), warehouse_url=f"duckdb:///{root}/wh.duckdb")


def _lake(root: Path, rows: int) -> Settings:
    settings = _settings(root)
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


def _compare(out: list[Measurement], step: str, baseline: str, *, slower: bool) -> None:
    """Note on the last measurement of ``step`` its ratio to the last of ``baseline``: the
    baseline's time over the step's (speed, ``slower`` False) or the step's over the
    baseline's (``slower`` True: how many times the baseline's time it took)."""
    measured = next(m for m in reversed(out) if m.step == step)
    base = next(m for m in reversed(out) if m.step == baseline)
    ratio = measured.seconds / base.seconds if slower else base.seconds / measured.seconds
    measured.extra["ratio"] = round(ratio, 3)
    measured.extra["vs"] = baseline.split(": ", 1)[-1]


def _duckdb(root: Path, rows: int, out: list[Measurement]) -> None:
    """The lake is written by one process and the steps run in another (``spawn``): memory an
    allocator kept from generating the rows, or from an earlier step or size, would count in
    a step's peak. The load runs before the lake read it is compared with, for the same
    reason."""
    where = root / f"duck-{rows}"
    spawn = multiprocessing.get_context("spawn")
    with spawn.Pool(1) as pool:
        pool.apply(_lake, (where, rows))
        pool.apply(_lake, (where / "warm-up", WARM_UP_ROWS))
    with spawn.Pool(1) as pool:
        out += pool.apply(_duckdb_steps, (where, rows))


WARM_UP_ROWS = 2_500
"""A one-symbol run loaded and read before the measured steps: a process's first DuckDB
connection, Arrow exchange and lake scan cost a second here, which no step should carry."""


def _duckdb_steps(root: Path, rows: int) -> list[Measurement]:
    warm = _settings(root / "warm-up")
    load_run(warm, RUN_DATE)
    read_changes(warm, RUN_DATE)
    out: list[Measurement] = []
    settings = _settings(root)
    load, read = "duckdb: load_run (empty table)", "duckdb: lake read only"
    with _step(load, rows, out):
        load_run(settings, RUN_DATE)
    with _step(read, rows, out):
        read_changes(settings, RUN_DATE)
    _compare(out, load, read, slower=True)
    again = "duckdb: load_run again (replace, rows unchanged)"
    with _step(again, rows, out):
        load_run(settings, RUN_DATE)
    _compare(out, again, read, slower=True)
    changed = _restated(read_changes(settings, RUN_DATE))
    warehouse = connect(settings.warehouse_url, settings)
    with _step("duckdb: load_rows, every row changed (replace)", rows, out):
        load_rows(warehouse, changed, "bench")
    return out


def _restated(rows: Frame[EnrichedStockRecord]) -> Frame[EnrichedStockRecord]:
    """``rows`` with every volume changed: a batch that replaces each stored row."""
    return Frame(EnrichedStockRecord, rows.df.with_columns(pl.col("volume") + 1))


def _postgres(root: Path, rows: int, base_url: str, out: list[Measurement]) -> None:
    """The loader beside bare binary COPYs of the same bytes (encoded before the clock starts):
    into a table without the primary key (the server's ceiling), into one with it (right
    before the load into the empty fact table it is compared with), and again over the same
    keys after deleting them (right before the load that changes every row). Each step starts
    after a CHECKPOINT, so none pays for the previous one's dirty pages."""
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
        copy_sql = f"COPY {{}} ({', '.join(frame.df.columns)}) FROM STDIN (FORMAT BINARY)"
        with psycopg.connect(url, autocommit=True) as con:

            def bare(step: str, table: str, delete: bool = False) -> None:
                con.execute("CHECKPOINT")
                with _step(step, rows, out) as extra:
                    with con.transaction(), con.cursor() as cur:
                        if delete:
                            cur.execute(f"DELETE FROM {table}")
                        with cur.copy(copy_sql.format(table)) as copy:
                            copy.write(encoded)
                    extra["mib"] = round(len(encoded) / 2**20)

            def load(step: str, batch: Frame[EnrichedStockRecord]) -> None:
                con.execute("CHECKPOINT")
                with _step(step, rows, out):
                    load_rows(warehouse, batch, "bench")

            con.execute("CREATE TABLE bare_copy (LIKE fact_stock_prices)")
            con.execute("CREATE TABLE bare_copy_keyed (LIKE fact_stock_prices INCLUDING INDEXES)")
            bare("postgres: bare binary COPY", "bare_copy")
            con.execute("DROP TABLE bare_copy")
            keyed = "postgres: bare binary COPY, primary key"
            bare(keyed, "bare_copy_keyed")
            load("postgres: load_rows (empty table)", frame)
            _compare(out, "postgres: load_rows (empty table)", keyed, slower=False)
            load("postgres: load_rows again (replace, rows unchanged)", frame)
            replace = "postgres: bare DELETE + COPY of the same keys"
            bare(replace, "bare_copy_keyed", delete=True)
            con.execute("DROP TABLE bare_copy_keyed")
            load("postgres: load_rows, every row changed (replace)", _restated(frame))
            _compare(out, "postgres: load_rows, every row changed (replace)", replace, slower=False)
    finally:
        with psycopg.connect(base_url, autocommit=True) as con:
            con.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def run(args: argparse.Namespace) -> list[Measurement]:
    out: list[Measurement] = []
    root = Path(tempfile.mkdtemp(prefix="fdp-bench-load-"))
    try:
        for _ in range(args.repeat if args.postgres_rows else 0):
            _postgres(root, args.postgres_rows, args.postgres_url, out)
        for rows in args.duckdb_rows:
            _duckdb(root, rows, out)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return out
