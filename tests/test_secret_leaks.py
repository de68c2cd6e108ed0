"""A leak scan: after runs that fail in every way a vendor can make them fail, with a vendor
that echoes the API key back and proxy credentials in the base URL, neither secret appears
anywhere fdp writes or prints: stdout, stderr, the data directory (except the raw vendor bytes,
kept exactly as received), the warehouse's tables."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import duckdb
import pytest

KEY = "LeakyKey+9f8e/7d"
PASSWORD = "pr0xy-Pa55/word"
DAY = dt.date(2026, 11, 20)
FDP = str(Path(sys.executable).with_name("fdp"))


def _series(echo: str, bad_open: str | None = None) -> dict[str, dict[str, str]]:
    series, day = {}, DAY
    while len(series) < 30:
        if day.weekday() < 5:
            base = 100.0 + len(series)
            series[day.isoformat()] = {
                "1. open": f"{base:.4f}" if bad_open is None or series else bad_open,
                "2. high": f"{base + 2:.4f}",
                "3. low": f"{base - 1:.4f}",
                "4. close": f"{base + 1:.4f}",
                "5. volume": "1000",
            }
        day -= dt.timedelta(days=1)
    return series


def _answer(symbol: str, echo: str) -> tuple[int, dict[str, str], bytes]:
    """What the vendor says to ``symbol``: each answer quotes the request, key included."""
    meta = {"1. Information": f"served {echo}", "2. Symbol": symbol}
    doc: dict[str, Any]
    if symbol == "ECHO":
        doc = {"Information": f"the call {echo} is not valid"}
    elif symbol == "NOTE":
        doc = {"Note": f"Thank you for using {echo}; our standard API rate limit is per day"}
    elif symbol == "BADV":
        doc = {"Meta Data": meta, "Time Series (Daily)": _series(echo, bad_open=echo)}
    elif symbol == "ERR":
        return 500, {}, f"upstream failed for {echo}".encode()
    elif symbol == "GZIP":
        return 200, {"Content-Encoding": "gzip"}, b"not gzip at all " + echo.encode()
    elif symbol == "HALF":
        whole = gzip.compress(json.dumps({"Meta Data": meta}).encode())
        return 200, {"Content-Encoding": "gzip"}, whole[: len(whole) // 2]
    else:
        doc = {"Meta Data": meta, "Time Series (Daily)": _series(echo)}
    return 200, {"Content-Type": "application/json"}, json.dumps(doc).encode()


@pytest.fixture
def echoing_vendor() -> Iterator[str]:
    """A loopback vendor that quotes the full request URL (the key in it) in its answers."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
            auth = self.headers.get("Authorization")
            echo = f"http://{self.headers.get('Host')}{self.path} auth={auth}"
            status, headers, payload = _answer(
                query.get("symbol", ""), echo + f" key={query.get('apikey')}"
            )
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    yield f"http://proxy-user:{quote(PASSWORD, safe='')}@{host}:{port}/query"
    server.shutdown()
    server.server_close()


def _fdp(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FDP, *args], env=env, capture_output=True, text=True, check=False)


def _secrets() -> list[str]:
    return sorted({s for v in (KEY, PASSWORD) for s in (v, quote(v, safe=""), quote(v))})


def _tables(warehouse: Path) -> str:
    """Every value of every table of the warehouse, as text."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        return "\n".join(str(con.execute(f'SELECT * FROM "{n}"').fetchall()) for n in names)


def test_no_secret_leaves_the_process_after_failing_runs(
    tmp_path: Path, echoing_vendor: str
) -> None:
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FDP_")} | {
        "FDP_DATA_DIR": str(data),
        "FDP_ALPHAVANTAGE_API_KEY": KEY,
        "FDP_ALPHAVANTAGE_BASE_URL": echoing_vendor,
        "FDP_ALPHAVANTAGE_CALLS_PER_MINUTE": "1000",
        "FDP_HTTP_MAX_RETRIES": "0",
        "FDP_HTTP_TIMEOUT_S": "5",
    }
    day = DAY.isoformat()
    runs = [
        _fdp(env, "ingest", "--symbols", "ECHO,NOTE,BADV,ERR,GOOD", "--date", day),
        _fdp(env, "run", "--source", "alpha_vantage", "--symbols", "ECHO", "--date", day),
        _fdp(env, "validate", "--date", day),
        _fdp(env, "transform", "--date", day),
        _fdp(env, "load", "--date", day),
        _fdp(env, "query", "select stage, status, error, details from pipeline_runs"),
    ]
    assert runs[0].returncode == 1, runs[0].stderr  # the failures were real
    assert "GOOD" in runs[0].stdout
    assert "Traceback" not in "".join(r.stderr for r in runs)
    raw = data / "raw" / "source=alpha_vantage" / f"ingest_date={day}"
    assert KEY.encode() in (raw / "symbol=GOOD.json").read_bytes()  # the vendor bytes, kept

    printed = "\n".join(r.stdout + r.stderr for r in runs)
    stored = {
        str(p.relative_to(data)): p.read_bytes().decode("utf-8", "replace")
        for p in data.rglob("*")
        if p.is_file()
        and not (p.parent == raw and p.name.endswith(".json") and ".meta." not in p.name)
        and p.suffix != ".duckdb"
    }
    tables = _tables(data / "warehouse.duckdb")
    assert "ECHO" in tables  # the failures were recorded ...
    for secret in _secrets():
        assert secret not in printed, f"{secret!r} printed"
        assert not [name for name, text in stored.items() if secret in text], f"{secret!r} stored"
        assert secret not in tables, f"{secret!r} in the warehouse"
