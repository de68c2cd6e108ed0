"""validate: the quality gate's full suite on a large in-memory batch (target: 1M rows < 3 s).

Builds a clean batch (every session for every symbol, so every rule runs its full path),
then times GX start-up (import, context, suite) apart from the validation itself. On Spark
the batch is landed as Parquet parts first and the executors read it (read included).
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time

import numpy as np
import polars as pl

from bench.harness import Measurement, measure
from fdp.calendar import last_sessions
from fdp.config import Settings
from fdp.quality.runner import validate_raw
from fdp.records import Frame, StockRecord
from fdp.sources.landing import RawZone

INGEST = dt.date(2024, 6, 28)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, default=1_000_000, help="approximate batch size")
    parser.add_argument("--symbols", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3, help="timed validations")
    parser.add_argument("--engine", choices=["polars", "spark"], default="polars")


def batch(rows: int, symbols: int) -> Frame[StockRecord]:
    per = max(1, rows // symbols)
    days = [d.isoformat() for d in last_sessions(INGEST, per)]
    rng = np.random.default_rng(7)
    n = per * symbols
    close = rng.uniform(10, 500, n)
    spread = rng.uniform(0.01, 5, n)
    df = pl.DataFrame(
        {
            "symbol": np.repeat([f"S{i:04d}" for i in range(symbols)], per),
            "timestamp": np.tile(np.array(days), symbols),
            "open": close + spread * rng.uniform(-1, 1, n),
            "high": close + spread,
            "low": close - spread,
            "close": close,
            "adjusted_close": close,
            "volume": rng.integers(0, 10**7, n),
            "dividend_amount": np.zeros(n),
            "split_coefficient": np.ones(n),
            "source_file": "file:///bench/raw/source=simulator/part-00000.parquet",
        }
    ).with_columns(
        pl.max_horizontal("high", "open").alias("high"),
        pl.min_horizontal("low", "open").alias("low"),
        pl.lit(INGEST).alias("ingest_date"),
    )
    return Frame(StockRecord, df)


def run(args: argparse.Namespace) -> list[Measurement]:
    out: list[Measurement] = []
    data = batch(args.rows, args.symbols)
    with measure("validate", "gx import + context + suite", 0, out):
        from fdp.quality import load_suite, validate_batch
        from fdp.quality.runner import _context

        _context()
        load_suite()
    with tempfile.TemporaryDirectory(prefix="fdp-bench-validate-") as tmp:
        settings = Settings(data_dir=tmp)
        if args.engine == "spark":
            from fdp.spark_session import session

            _land(settings, data)
            session(settings)
        for i in range(args.repeat):
            step = f"full suite, {args.engine} (run {i + 1})"
            with measure("validate", step, len(data), out) as x:
                start = time.perf_counter()
                if args.engine == "spark":
                    # The executors read the landed batch: the read is part of the time.
                    done = validate_raw(settings, "simulator", INGEST, "spark")
                else:
                    done = validate_batch(data, source="simulator", ingest_date=INGEST)
                x["success"] = done.report.success
                x["rules"] = done.report.evaluated_count
                x["s"] = round(time.perf_counter() - start, 3)
    return out


def _land(settings: Settings, data: Frame[StockRecord], parts: int = 8) -> None:
    """``data`` as Parquet parts of the raw zone (whole symbols per part)."""
    zone = RawZone(settings)
    symbols = data.df["symbol"].unique(maintain_order=True)
    for i in range(parts):
        rows = data.df.filter(pl.col("symbol").is_in(symbols.gather_every(parts, i).implode()))
        zone.land_parquet("simulator", INGEST, Frame(StockRecord, rows).to_arrow(), i)
