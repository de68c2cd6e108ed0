"""Parse: vendor-shaped daily JSON documents into StockRecords (bars per second)."""

from __future__ import annotations

import argparse
import datetime as dt

import numpy as np
import orjson
import polars as pl

from bench.harness import Measurement, measure
from fdp.calendar import last_sessions
from fdp.sources.vendor_json import encode_daily_adjusted, parse_daily


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--symbols", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=5000)


def run(args: argparse.Namespace) -> list[Measurement]:
    out: list[Measurement] = []
    days = last_sessions(dt.date(2025, 12, 31), args.sessions)
    rng = np.random.default_rng(0)
    docs = []
    for i in range(args.symbols):
        close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, len(days))))
        bars = pl.DataFrame(
            {
                "trade_date": days,
                "open": close,
                "high": close * 1.01,
                "low": close * 0.99,
                "close": close,
                "adjusted_close": close,
                "volume": rng.integers(0, 10**6, len(days)),
                "dividend_amount": 0.0,
                "split_coefficient": 1.0,
            }
        )
        docs.append(encode_daily_adjusted(f"S{i:04d}", bars, last_refreshed=days[-1]))
    with measure("parse", "reference: orjson.loads only", args.symbols * len(days), out):
        for doc in docs:
            orjson.loads(doc)
    with measure("parse", "vendor JSON -> StockRecord", args.symbols * len(days), out) as extra:
        for i, doc in enumerate(docs):
            parse_daily(doc, source_file=f"doc{i}", ingest_date=days[-1])
        extra["mib"] = round(sum(map(len, docs)) / 2**20)
    return out
