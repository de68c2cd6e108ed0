"""The chart report: candles on the split-adjusted basis, quality flags on their bars, hostile
names that stay text, a 500-symbol index, and the pages in a real browser."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import time
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import polars as pl
import pytest

from browser import dom
from fdp import indicators
from fdp.config import Settings
from fdp.indicators import P
from fdp.quality.report import (
    ExpectationResult,
    ValidationReport,
    reports_between,
    write_reports,
)
from fdp.report import ASSETS, LIBRARY, write_report
from fdp.report.chart_data import OVERLAYS, chart_rows, flags, payload
from fdp.report.pages import page_name

START = dt.date(2024, 1, 1)
ASSET_DIR = Path(__file__).parents[1] / "src" / "fdp" / "report" / "assets"


def curated(sessions: dict[str, int], split_at: int | None = None) -> pl.DataFrame:
    """Curated-shaped rows: a wave per symbol, one day apart, every indicator column filled
    (the report draws columns; their values are the transform's business). With ``split_at``
    a 2:1 split happens on that row: earlier rows trade at twice their P, with half the volume."""
    rows = []
    for k, (symbol, n) in enumerate(sessions.items()):
        for i in range(n):
            p = 100 + 10 * math.sin((i + k) / 3)
            factor = 2.0 if split_at is not None and i < split_at else 1.0
            close = p * factor
            rows.append(
                {
                    "symbol": symbol,
                    "trade_date": START + dt.timedelta(days=i),
                    "open": close * (0.99 if i % 2 else 1.01),
                    "high": close * 1.02,
                    "low": close * 0.97,
                    "close": close,
                    "volume": 1000 + i,
                    "split_coefficient": 2.0 if i == split_at else 1.0,
                    "ingest_date": START + dt.timedelta(days=n),
                    **dict.fromkeys(indicators.columns(), p),
                    P: p,
                }
            )
    frame = pl.DataFrame(rows)
    warm_up = {line.column: int(line.label.split()[1]) for line in OVERLAYS}
    return frame.with_columns(
        pl.when(pl.int_range(pl.len()).over("symbol") >= n - 1).then(pl.col(c)).alias(c)
        for c, n in warm_up.items()
    )


def validation(
    keys: list[tuple[str, str]], source: str = "simulator", rule: str = "high_ge_low"
) -> ValidationReport:
    failed = ExpectationResult(
        rule=rule,
        expectation_type="expect_column_pair_values_a_to_be_greater_than_b",
        columns=("high", "low"),
        success=False,
        unexpected_count=len(keys),
        unexpected_percent=1.0,
        mostly=None,
        description="high is at least low",
        failing_keys=tuple(keys),
    )
    passed = ExpectationResult(
        "close_positive", "expect_column_values_to_be_between", ("close",), True, 0, 0.0, None, ""
    )
    return ValidationReport(
        suite="stock_data_suite",
        source=source,
        ingest_date=START + dt.timedelta(days=40),
        engine="polars",
        validated_at=dt.datetime(2024, 2, 10, tzinfo=dt.UTC),
        row_count=100,
        rejected_count=0,
        expectations=[failed, passed],
    )


def test_candles_and_volume_are_on_the_split_adjusted_basis() -> None:
    """Before a 2:1 split the bars trade at twice P with half the volume: the chart halves
    their prices and doubles their volume, so the candles line up with the moving averages."""
    rows = curated({"X": 40}, split_at=20)
    data = payload("X", chart_rows(rows.sample(fraction=1.0, shuffle=True, seed=1)), [])
    assert data["time"] == [str(START + dt.timedelta(days=i)) for i in range(40)]
    for i in (0, 19, 20, 39):
        p = 100 + 10 * math.sin(i / 3)
        assert data["close"][i] == pytest.approx(p, rel=1e-6)
        assert data["high"][i] == pytest.approx(p * 1.02, rel=1e-6)
        assert data["low"][i] == pytest.approx(p * 0.97, rel=1e-6)
        assert data["volume"][i] == (1000 + i) * (2 if i < 20 else 1)


def test_every_moving_average_of_the_indicators_is_drawn_with_its_warm_up_as_gaps() -> None:
    data = payload("X", chart_rows(curated({"X": 60})), [])
    labels = [line["label"] for line in data["overlays"]]
    assert labels == ["SMA 5", "SMA 20", "SMA 50", "EMA 12", "EMA 26"]
    sma_50 = next(line["values"] for line in data["overlays"] if line["label"] == "SMA 50")
    assert sma_50[:49] == [None] * 49
    assert sma_50[49] == pytest.approx(100 + 10 * math.sin(49 / 3), rel=1e-6)
    assert [line["label"] for line in data["panes"]] == ["volatility 20d %", "RSI 14"]


def test_a_flagged_bar_gets_a_marker_naming_its_rules() -> None:
    """Keys name the symbol as the vendor wrote it and the date as a string; a key that is no
    bar of the chart (a bad date, a rejected row) gets no marker."""
    day = str(START + dt.timedelta(days=5))
    report = validation([("x", day), ("X", "2024-02-30"), ("Y", day), (" x", day)])
    mine = flags([report, validation([("X", day)], rule="volume_ok")])["X"]
    assert len(mine) == 3
    data = payload("X", chart_rows(curated({"X": 10})), mine)
    assert data["markers"] == [{"time": day, "text": "high_ge_low, volume_ok"}]


HOSTILE = [
    "</script><script>alert(1)</script>",
    '"><img src=x onerror=alert(2)>',
    "<!--",
    "../../escaped",
    "CON",
    "aapl",
    "A&amp;B",
]
TAGS = {
    "html", "head", "meta", "title", "link", "script", "body", "nav", "a", "h1", "h2", "h3",
    "p", "div", "noscript", "table", "thead", "tbody", "tr", "th", "td", "input", "footer",
}  # fmt: skip


class Markup(HTMLParser):
    """Every element and attribute of a page, and its text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.data_json: list[str] = []
        self._in_data = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_data = tag == "script" and dict(attrs).get("type") == "application/json"

    def handle_endtag(self, tag: str) -> None:
        self._in_data = False

    def handle_data(self, data: str) -> None:
        (self.data_json if self._in_data else self.text).append(data)


def parse(page: str) -> Markup:
    parsed = Markup()
    parsed.feed(page)
    return parsed


def assert_only_our_markup(page: str, where: str) -> Markup:
    """No element, attribute, script or link that the report does not write itself."""
    parsed = parse(page)
    for tag, attrs in parsed.tags:
        assert tag in TAGS, f"{where}: injected <{tag}>"
        assert not [a for a in attrs if a.startswith("on")], f"{where}: handler on <{tag}>"
        if tag == "script":
            src = attrs.get("src")
            assert src in {"assets/index.js", f"../assets/{LIBRARY}", "../assets/chart.js"} or (
                src is None and attrs.get("type") == "application/json"
            ), f"{where}: foreign script {attrs}"
        for name in ("src", "href"):
            url = attrs.get(name) or ""
            assert (
                ":" not in url
                or url
                in (
                    "https://www.tradingview.com/",  # the licence's attribution link
                )
                or url.startswith("file://")
            ), f"{where}: {name}={url!r} leaves the report"
    policy = [a for t, a in parsed.tags if t == "meta" and a.get("http-equiv")]
    assert "default-src 'none'" in (policy[0].get("content") or ""), f"{where}: no policy"
    return parsed


def test_hostile_names_stay_text_and_paths_stay_inside_the_report(
    settings: Settings, tmp_path: Path
) -> None:
    """Symbols, a source directory, rule names and vendor dates full of markup reach the pages
    as text; every page file lands inside the report under a name no symbol can steer."""
    rows = curated(dict.fromkeys(HOSTILE, 8))
    day = str(START + dt.timedelta(days=3))
    hostile = validation(
        [(s, day) for s in HOSTILE] + [(HOSTILE[1], '"><b>2024</b>')],
        source="<img src=x onerror=alert(3)>",
        rule="</script><script>alert(4)</script>",
    )
    write_reports(settings, hostile)
    read_back = reports_between(settings, START, START + dt.timedelta(days=60))
    assert [r.source for r in read_back] == [hostile.source]
    linked = replace(hostile, html_url="javascript:alert(5)")
    target = tmp_path / "report"
    write_report(str(target), rows, [*read_back, linked], "<i>title</i>")

    pages = {page_name(s) for s in HOSTILE}
    assert len(pages) == len(HOSTILE)
    written = {p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()}
    assert written == {"index.html", *(f"assets/{a}" for a in ASSETS)} | {
        f"symbols/{p}" for p in pages
    }
    assert {p.parent for p in target.rglob("*")} <= {target, target / "assets", target / "symbols"}

    index = assert_only_our_markup((target / "index.html").read_text(), "index")
    assert "javascript:alert(5)" in "".join(index.text)
    links = [a["href"] for t, a in index.tags if t == "a" and (a.get("href") or "").startswith("s")]
    assert links == [f"symbols/{page_name(s)}" for s in sorted(HOSTILE)]
    for symbol in HOSTILE:
        page = (target / "symbols" / page_name(symbol)).read_text()
        parsed = assert_only_our_markup(page, symbol)
        assert symbol in parsed.text, f"{symbol!r} is not the page's heading"
        data = json.loads("".join(parsed.data_json))
        assert data["symbol"] == symbol
        assert data["markers"] == [{"time": day, "text": hostile.expectations[0].rule}]
        assert hostile.expectations[0].rule in "".join(parsed.text)


def test_a_hostile_page_in_a_browser_draws_its_chart_and_no_injected_element(
    tmp_path: Path,
) -> None:
    """A symbol that closes an attribute and a rule name that closes the JSON's script element,
    on one page: Chromium runs the chart script to its end and builds no element from them."""
    symbol = HOSTILE[1]
    day = str(START + dt.timedelta(days=3))
    flagged = validation([(symbol, day)], rule="</script><script>alert(4)</script><!--")
    target = tmp_path / "report"
    write_report(str(target), curated({symbol: 30}), [flagged], "t")
    after = parse(dom(target / "symbols" / page_name(symbol), tmp_path / "profile"))
    assert ("body", {"data-chart": "drawn"}) in after.tags, "the chart script did not finish"
    assert not [t for t, _ in after.tags if t == "img"]
    assert not [a for _, attrs in after.tags for a in attrs if a.startswith("on")]
    assert [a for t, a in after.tags if t == "script" and not a.get("src")] == [
        {"type": "application/json", "id": "fdp-data"}
    ]
    assert flagged.expectations[0].rule in "".join(after.text)


def test_an_index_of_500_symbols_links_one_small_page_each_and_one_library(
    tmp_path: Path,
) -> None:
    symbols = [f"S{k:03d}" for k in range(500)]
    rows = curated(dict.fromkeys(symbols, 60))
    target = tmp_path / "report"
    began = time.perf_counter()
    report = write_report(str(target), rows, [validation([("S007", str(START))])], "500")
    seconds = time.perf_counter() - began
    assert seconds < 15, f"500 symbols took {seconds:.1f} s"
    assert (report.symbols, report.rows) == (500, 30_000)

    index = (target / "index.html").read_text()
    assert len(index) < 150_000
    parsed = assert_only_our_markup(index, "index")
    links = [a["href"] for t, a in parsed.tags if t == "a" and "symbols/" in (a.get("href") or "")]
    assert links == [f"symbols/{s}.html" for s in symbols]
    assert all((target / link).is_file() for link in links)
    library = [p for p in target.rglob("*.js") if p.name == LIBRARY]
    assert len(library) == 1
    marker = b"createChart"
    for page in (target / "symbols").iterdir():
        body = page.read_bytes()
        assert len(body) < 20_000, page.name
        assert marker not in body, page.name
    assert 'class="n fail">1<' in index, "S007's quality flag is not on the index"
    shown = parse(dom(target / "index.html", tmp_path / "profile"))
    assert ("body", {"data-filter": "ready"}) in shown.tags, "the index's script did not run"
    rows = [a for t, a in shown.tags if t == "tr" and "data-symbol" in a]
    assert len(rows) == 500
    assert not [a for a in rows if "hidden" in a]


def test_the_vendored_library_is_the_one_its_notice_names() -> None:
    notice = (ASSET_DIR / "NOTICE").read_text()
    digest = hashlib.sha256((ASSET_DIR / LIBRARY).read_bytes()).hexdigest()
    assert digest in notice
    assert LIBRARY in notice
    assert "Apache License 2.0" in notice
    assert "Apache License" in (ASSET_DIR / "LICENSE-lightweight-charts").read_text()


def test_reports_between_lists_the_batches_in_range_and_skips_strays(settings: Settings) -> None:
    base = validation([])
    days = [START + dt.timedelta(days=d) for d in (0, 1, 5)]
    for day in days:
        for source in ("simulator", "alpha_vantage"):
            write_reports(settings, replace(base, source=source, ingest_date=day))
    stray = Path(settings.path("reports", "validation", "source=simulator", "ingest_date=oops"))
    stray.mkdir(parents=True)
    (stray / "validation.json").write_text("{}")
    found = reports_between(settings, days[1], days[2])
    assert [(r.ingest_date, r.source) for r in found] == [
        (days[1], "alpha_vantage"),
        (days[1], "simulator"),
        (days[2], "alpha_vantage"),
        (days[2], "simulator"),
    ]


def test_a_report_on_moto_s3_lists_its_batches_and_writes_every_page(
    aws_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On an object store (moto, a LOCAL STAND-IN for S3): the batches come from one listing,
    the pages and the one library copy land under the report's prefix."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=aws_env, region_name="us-east-1")
    s3.create_bucket(Bucket="charts")
    monkeypatch.setenv("FDP_S3_ENDPOINT_URL", aws_env)
    remote = Settings(data_dir="s3://charts/data", s3_endpoint_url=aws_env)
    write_reports(remote, validation([("AAA", str(START))]))
    batches = reports_between(remote, START, START + dt.timedelta(days=60))
    report = write_report(
        remote.path("reports", "r"), curated({"AAA": 30, "BBB": 30}), batches, "s3", remote
    )
    assert report.index_url == "s3://charts/data/reports/r/index.html"
    keys = {
        o["Key"] for o in s3.list_objects_v2(Bucket="charts", Prefix="data/reports/r/")["Contents"]
    }
    assert keys == {
        f"data/reports/r/{p}" for p in ("index.html", "symbols/AAA.html", "symbols/BBB.html")
    } | {f"data/reports/r/assets/{a}" for a in ASSETS}
    index = s3.get_object(Bucket="charts", Key="data/reports/r/index.html")["Body"].read().decode()
    assert "high_ge_low" in index
