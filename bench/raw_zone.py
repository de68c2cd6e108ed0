"""Raw zone and Alpha Vantage ingest: land, re-land (unchanged), parse, and HTTP ingest.

The HTTP step runs ``fdp.sources.alpha_vantage.ingest`` against a loopback server serving
vendor-shaped documents with quotas lifted, so it measures the client's own overhead.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import polars as pl

from bench.harness import Measurement, measure
from fdp.config import Settings
from fdp.sources import alpha_vantage
from fdp.sources.landing import RawZone
from fdp.sources.vendor_json import encode_daily_adjusted

DAY = dt.date(2026, 11, 20)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--symbols", type=int, default=200, help="documents to land")
    parser.add_argument("--bars", type=int, default=5000, help="bars per document (full size)")
    parser.add_argument("--data-dir", default=None, help="default: a temporary directory")


def _document(symbol: str, bars: int, rng: np.random.Generator) -> bytes:
    days = pl.date_range(DAY - dt.timedelta(days=bars - 1), DAY, eager=True)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, bars)))
    frame = pl.DataFrame(
        {
            "trade_date": days,
            "open": close,
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "adjusted_close": close,
            "volume": rng.integers(1_000, 1_000_000, bars),
            "dividend_amount": np.zeros(bars),
            "split_coefficient": np.ones(bars),
        }
    )
    return encode_daily_adjusted(symbol, frame, last_refreshed=DAY)


def run(args: argparse.Namespace) -> list[Measurement]:
    rng = np.random.default_rng(7)
    symbols = [f"S{i:04d}" for i in range(args.symbols)]
    docs = {s: _document(s, args.bars, rng) for s in symbols}
    rows = args.symbols * args.bars
    size_mib = sum(len(d) for d in docs.values()) / 2**20
    out: list[Measurement] = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=args.data_dir or tmp)
        zone = RawZone(settings)
        with measure("raw_zone", "land", rows, out) as extra:
            for s in symbols:
                zone.land("simulator", DAY, s, docs[s], rows=args.bars)
            extra["MiB"] = round(size_mib, 1)
        with measure("raw_zone", "land again (unchanged: no write)", rows, out):
            for s in symbols:
                zone.land("simulator", DAY, s, docs[s], rows=args.bars)
        with measure("raw_zone", "read_batch (parse)", rows, out):
            assert len(zone.read_batch("simulator", DAY)) == rows
        server, url = _serve(docs)
        try:
            http = Settings(
                data_dir=args.data_dir or tmp,
                alphavantage_api_key="bench",  # type: ignore[arg-type]
                alphavantage_base_url=url,
                alphavantage_calls_per_minute=10**9,
                alphavantage_calls_per_day=10**9,
            )
            with measure("raw_zone", "alpha_vantage ingest (loopback)", rows, out) as extra:
                outcomes = alpha_vantage.ingest(http, symbols, DAY, outputsize="full")
                extra["ok"] = sum(o.ok for o in outcomes)
        finally:
            server.shutdown()
            server.server_close()
        out[-1].extra["calls_per_s"] = round(args.symbols / out[-1].seconds, 1)
    return out


def _serve(docs: dict[str, bytes]) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            symbol = parse_qs(urlsplit(self.path).query)["symbol"][0]
            payload = docs[symbol]
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/query"
