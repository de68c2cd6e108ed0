"""generate: the GBM simulator landing a synthetic universe as Parquet (target 10M bars < 10 s)."""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import tempfile

from bench.harness import Measurement, measure
from fdp.calendar import next_sessions
from fdp.config import Settings
from fdp.sources.simulator import land_simulated
from fdp.sources.symbols import universe


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--symbols", type=int, default=5000, help="synthetic universe size")
    parser.add_argument("--sessions", type=int, default=2000, help="sessions per symbol")
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2019, 1, 2))
    parser.add_argument("--format", default="parquet", choices=("parquet", "json"))
    parser.add_argument("--data-dir", default=None, help="where to land (default: a temp dir)")


def run(args: argparse.Namespace) -> list[Measurement]:
    end = next_sessions(args.start, args.sessions)[-1]
    tickers = universe(args.symbols)
    out: list[Measurement] = []
    root = args.data_dir or tempfile.mkdtemp(prefix="fdp-bench-generate-")
    try:
        rows = args.symbols * args.sessions
        with measure("generate", f"{args.symbols}x{args.sessions} {args.format}", rows, out) as x:
            summary = land_simulated(
                Settings(data_dir=root),
                start=args.start,
                end=end,
                ingest_date=end,
                symbols=tickers,
                fmt=args.format,
            )
            x["files"] = len(summary.files)
            x["rows_written"] = summary.rows
    finally:
        if args.data_dir is None:
            shutil.rmtree(root, ignore_errors=True)
    return out
