"""A loopback HTTP server that plays Alpha Vantage: per-symbol scripts, recorded calls.

Shared by the client's tests and the production rehearsal, which points a deployed Airflow's
ingest task at it.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

LAST_BAR = dt.date(2026, 11, 20)


def vendor_doc(
    symbol: str,
    bars: int,
    *,
    adjusted: bool = False,
    bump: float = 0.0,
    last: dt.date = LAST_BAR,
) -> bytes:
    """A vendor-shaped document: ``bars`` weekdays ending ``last``, newest first."""
    series: dict[str, dict[str, str]] = {}
    day, i = last, 0
    while len(series) < bars:
        if day.weekday() < 5:
            base = 100.0 + i + bump
            bar = {
                "1. open": f"{base:.4f}",
                "2. high": f"{base + 2:.4f}",
                "3. low": f"{base - 1:.4f}",
                "4. close": f"{base + 1:.4f}",
            }
            if adjusted:
                bar |= {
                    "5. adjusted close": f"{(base + 1) / 2:.4f}",
                    "6. volume": str(1000 + i),
                    "7. dividend amount": "0.0000",
                    "8. split coefficient": "2.0" if i == 3 else "1.0",
                }
            else:
                bar["5. volume"] = str(1000 + i)
            series[day.isoformat()] = bar
            i += 1
        day -= dt.timedelta(days=1)
    info = "Daily Time Series with Splits and Dividend Events" if adjusted else "Daily Prices"
    doc = {
        "Meta Data": {
            "1. Information": info,
            "2. Symbol": symbol,
            "3. Last Refreshed": last.isoformat(),
            "4. Output Size": "Compact",
            "5. Time Zone": "US/Eastern",
        },
        "Time Series (Daily)": series,
    }
    return json.dumps(doc, indent=4).encode()


@dataclass
class Answer:
    """One scripted answer; ``body=None`` means a normal document for the requested call."""

    status: int = 200
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    declared_length: int | None = None
    """A ``Content-Length`` to announce instead of the body's (more: a body cut short)."""


@dataclass
class Call:
    at: float
    query: dict[str, str]


class VendorServer:
    """A loopback HTTP server that plays the vendor: per-symbol scripts, recorded calls."""

    def __init__(self) -> None:
        self.scripts: dict[str, list[Answer]] = {}
        self.calls: list[Call] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                with owner.lock:
                    owner.calls.append(Call(time.monotonic(), query))
                    script = owner.scripts.get(query.get("symbol", ""), [])
                    answer = script.pop(0) if len(script) > 1 else (script or [Answer()])[0]
                if answer.delay:
                    time.sleep(answer.delay)
                payload = answer.body
                if payload is None:
                    full = query.get("outputsize") == "full"
                    adjusted = query.get("function") == "TIME_SERIES_DAILY_ADJUSTED"
                    payload = vendor_doc(query["symbol"], 300 if full else 100, adjusted=adjusted)
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(answer.declared_length or len(payload)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that timed out closed its socket: expected here

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/query"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def calls_for(self, symbol: str) -> list[Call]:
        return [c for c in self.calls if c.query.get("symbol") == symbol]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()
