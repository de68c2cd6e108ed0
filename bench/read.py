"""read: ``fdp.read`` on a 5,000-symbol, 8-year lake, plain and ``as_of``, and the history's size.

Targets: one symbol's 8 years under 50 ms; every symbol for one month under 300 ms; ``as_of``
reads at most 2x the plain read of the same rows; the version history under 5% of the lake's
size after a year of daily ingests in which 0.5% of the bars are restated.

The lake is built as it would be in production: ``fdp generate``'s simulator lands the first
seven years as one batch (a vendor's full download), transformed once; then each session of
the eighth year is its own batch, the new session's bars plus restatements of recent bars
(a vendor correcting a bar one to five sessions later; 0.5% of the year's bars), each
transformed incrementally, which writes the version history. ``--dir`` keeps the lake for
later runs (built once, then only read).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from bench.harness import Measurement, measure
from fdp import history, lake
from fdp.calendar import next_sessions
from fdp.config import Settings
from fdp.data import read
from fdp.quality.gate import Gate
from fdp.sources.landing import RawZone
from fdp.sources.simulator import SOURCE, land_simulated, simulate, stock_records
from fdp.sources.symbols import universe
from fdp.transform import transform

START = dt.date(2018, 1, 2)
LAG_SESSIONS = 5
"""A restated bar is one of the last ``LAG_SESSIONS`` sessions before the batch's."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--symbols", type=int, default=5000)
    parser.add_argument("--years", type=int, default=8, help="the last one ingested daily")
    parser.add_argument("--restated", type=float, default=0.005, help="share of bars restated")
    parser.add_argument("--repeat", type=int, default=20, help="runs of each read")
    parser.add_argument("--dir", default=None, help="data directory, kept (default: temporary)")


def run(args: argparse.Namespace) -> list[Measurement]:
    out: list[Measurement] = []
    settings = Settings(data_dir=args.dir or tempfile.mkdtemp(prefix="fdp-bench-read-"))
    symbols = universe(args.symbols)
    sessions = next_sessions(START, 252 * args.years)
    daily = sessions[-252:]
    if not lake.partitions(settings):
        _build(settings, symbols, sessions[: -len(daily)], daily, args.restated, out)
    lake_bytes, history_bytes = _size(lake.table_url(settings)), _size(history.table_url(settings))
    one, month = symbols[len(symbols) // 2], daily[len(daily) // 2]
    in_month = [d for d in sessions if (d.year, d.month) == (month.year, month.month)]
    first, last = in_month[0], in_month[-1]
    as_of = daily[len(daily) // 2 + 3]
    cases: dict[str, Callable[[], Any]] = {
        f"one symbol, {args.years} years": lambda: read(one, settings=settings),
        "one symbol, as_of": lambda: read(one, as_of=as_of, settings=settings),
        f"all symbols, {first:%Y-%m}": lambda: read(start=first, end=last, settings=settings),
        "all symbols, month, as_of": lambda: read(
            start=first, end=last, as_of=as_of, settings=settings
        ),
    }
    timings = {}
    for step, case in cases.items():
        rows = case().height  # the first run also warms the page cache
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            case()
            times.append(time.perf_counter() - started)
        timings[step] = min(times)
        extra = {"median_ms": round(statistics.median(times) * 1000, 1)}
        out.append(Measurement("read", step, rows, min(times), 0.0, extra))
    names = list(cases)
    out[-3].extra["x_plain"] = round(timings[names[1]] / timings[names[0]], 2)
    out[-1].extra["x_plain"] = round(timings[names[3]] / timings[names[2]], 2)
    out.append(
        Measurement(
            "read",
            "history size / lake size",
            _rows(settings),
            0.0,
            0.0,
            {
                "lake_mib": round(lake_bytes / 2**20, 1),
                "history_mib": round(history_bytes / 2**20, 2),
                "share_pct": round(100 * history_bytes / lake_bytes, 2),
            },
        )
    )
    return out


def _build(
    settings: Settings,
    symbols: list[str],
    backfill: list[dt.date],
    daily: list[dt.date],
    restated: float,
    out: list[Measurement],
) -> None:
    """The seven-year backfill, then a batch per session of the last year with restatements."""
    land_simulated(
        settings,
        start=backfill[0],
        end=backfill[-1],
        ingest_date=backfill[-1],
        symbols=symbols,
        fmt="parquet",
    )
    with measure("read", "build: backfill", len(symbols) * len(backfill), out):
        transform(settings, backfill[-1], gate=_benchmark(settings, backfill[-1]))
    bars = simulate(symbols, start=backfill[-LAG_SESSIONS], end=daily[-1])
    rng = np.random.default_rng(17)
    per_day = round(restated * len(symbols))
    zone = RawZone(settings)
    with measure(
        "read", "build: daily runs with restatements", len(symbols) * len(daily), out
    ) as x:
        runs = []
        for day in daily:
            today = bars.filter(pl.col("trade_date") == day)
            recent = bars.filter(
                (pl.col("trade_date") < day) & (pl.col("trade_date") >= _back(bars, day))
            )
            pick = rng.choice(recent.height, size=per_day, replace=False)
            factor = 1 + rng.normal(0, 0.01, per_day)
            fixed = recent[pick].with_columns(
                pl.col(p) * pl.Series(factor) for p in ("open", "high", "low", "close")
            )
            batch = pl.concat([today, fixed]).sort("symbol", "trade_date")
            zone.land_parquet(
                SOURCE, day, stock_records(batch, f"bench-{day}", day).to_arrow(), part=0
            )
            started = time.perf_counter()
            transform(settings, day, gate=_benchmark(settings, day))
            runs.append(time.perf_counter() - started)
        x["daily_run_median_s"] = round(statistics.median(runs), 3)
        x["restated_per_day"] = per_day


def _back(bars: pl.DataFrame, day: dt.date) -> dt.date:
    earlier = bars.filter(pl.col("trade_date") < day)["trade_date"].unique().sort()
    return earlier[-LAG_SESSIONS]


def _size(url: str) -> int:
    root = Path(url)
    return sum(p.stat().st_size for p in root.rglob("*.parquet")) if root.exists() else 0


def _rows(settings: Settings) -> int:
    return int(lake.scan(settings).select(pl.len()).collect().item())


def _benchmark(settings: Settings, day: dt.date) -> Gate:
    """Reads are measured, not the gate: each batch is admitted without a validation."""
    return Gate(settings, SOURCE, day, override="benchmark of reads")
