"""The HTML report of curated prices (``fdp demo``, ``fdp report``): per symbol, split-adjusted
candlesticks with the moving averages, a volume pane, volatility, and the data-quality results,
zoomable, drawn by TradingView's Lightweight Charts, and viewable offline.

A report is a directory::

    index.html                 every symbol (filterable, linked), every quality batch
    symbols/<SYMBOL>.html      one page per symbol: its chart data as JSON, its quality flags
    assets/                    the chart library, fdp's chart script and CSS, NOTICE, LICENSE

Why this shape and this library: the report is opened from a laptop, an S3 console or a CI
artefact, where a CDN may be unreachable, so the library ships inside fdp (``assets/``, the
npm package's standalone build, 198 kB; Plotly's bundle is 4.8 MB) and every page refers to
the one copy in the report. A page holds only its own symbol's data, so the index of 500
symbols opens at once and a symbol's page loads one chart, never 500.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.resources import files

import polars as pl

from fdp.config import Settings
from fdp.errors import DataError
from fdp.indicators import P
from fdp.quality.report import ValidationReport
from fdp.report import chart_data, pages
from fdp.report.pages import ASSET_DIR, SYMBOL_DIR, SymbolSummary, page_name
from fdp.storage import filesystem, put_bytes

LIBRARY = "lightweight-charts-5.2.1.js"
"""The vendored chart library (assets/NOTICE says where it comes from)."""
WRITERS = 8
"""Files written at once: a report of many symbols is many small files, and each local write
waits for its flush to disk (each object-store write for a round trip)."""
ASSETS = (LIBRARY, "chart.js", "index.js", "report.css", "NOTICE", "LICENSE-lightweight-charts")


@dataclass(frozen=True, slots=True)
class Report:
    """Where a written report is and what it holds."""

    index_url: str
    symbols: int
    rows: int
    batches: int
    bytes_written: int


def build_report(
    settings: Settings,
    start: dt.date,
    end: dt.date,
    symbols: Sequence[str] | None = None,
    target: str | None = None,
) -> Report:
    """The report of the curated rows of ``symbols`` (default: every symbol with rows) traded
    in [start, end], with the quality reports of the batches ingested from ``start`` on (to
    the last batch a shown row came from), written to ``target`` (default:
    ``reports/charts/<start>_<end>`` under the data directory)."""
    from fdp import lake
    from fdp.pipeline import check_range
    from fdp.quality.report import reports_between

    check_range(start, end)
    rows = lake.scan(settings).filter(
        pl.col("year").is_between(start.year, end.year),  # reads only those years' partitions
        pl.col("trade_date").is_between(start, end),
    )
    if symbols is not None:
        rows = rows.filter(pl.col("symbol").is_in(list(symbols)))
    curated = rows.collect()
    missing = sorted(set(symbols or ()) - set(curated["symbol"].unique().to_list()))
    if missing:
        raise DataError(
            f"no curated rows for {', '.join(missing)} between {start} and {end}",
            symbol=missing[0],
            hint="check the tickers, or run `fdp backfill` for them first",
        )
    if curated.is_empty():
        raise DataError(
            f"no curated rows between {start} and {end}",
            hint="pick dates that have data, or run `fdp backfill --start ... --end ...` first",
        )
    last_batch = max(end, curated.select(pl.col("ingest_date").max()).item())
    validations = reports_between(settings, start, last_batch)
    url = target or settings.path("reports", "charts", f"{start}_{end}")
    return write_report(url, curated, validations, f"fdp report {start} to {end}", settings)


def write_report(
    url: str,
    curated: pl.DataFrame,
    validations: Sequence[ValidationReport],
    title: str,
    settings: Settings | None = None,
) -> Report:
    """Write the report directory at ``url`` (a local path or an object-store URL)."""
    fs, root = filesystem(url, settings)
    assets = files("fdp.report") / "assets"
    out = [(f"{ASSET_DIR}/{name}", (assets / name).read_bytes()) for name in ASSETS]
    flagged = chart_data.flags(validations)
    summaries = _summaries(curated, {symbol: len(found) for symbol, found in flagged.items()})
    drawn = chart_data.chart_rows(curated).partition_by("symbol", as_dict=True)
    by_symbol = {str(key[0]): part for key, part in drawn.items()}
    names = [s.symbol for s in summaries]
    for k, summary in enumerate(summaries):
        mine = flagged.get(summary.symbol.upper(), [])
        data = chart_data.payload(summary.symbol, by_symbol[summary.symbol], mine)
        neighbours = (names[k - 1] if k else None, names[k + 1] if k + 1 < len(names) else None)
        page = pages.symbol_page(
            title, summary, chart_data.script_json(data), validations, mine, neighbours, LIBRARY
        )
        out.append((f"{SYMBOL_DIR}/{page_name(summary.symbol)}", page.encode()))
    dates = pl.col("trade_date")
    start, end = curated.select(dates.min().alias("start"), dates.max().alias("end")).row(0)
    index = pages.index_page(title, start, end, summaries, validations)
    # The index last: a reader who opens it finds every page it links.
    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(lambda item: put_bytes(fs, f"{root}/{item[0]}", item[1]), out))
    put_bytes(fs, f"{root}/index.html", index.encode())
    return Report(
        str(fs.unstrip_protocol(f"{root}/index.html")),
        len(summaries),
        curated.height,
        len(validations),
        sum(len(data) for _, data in out) + len(index.encode()),
    )


def _summaries(curated: pl.DataFrame, flag_counts: dict[str, int]) -> list[SymbolSummary]:
    """Per symbol, by symbol: its rows, dates, last P, change of P and last volatility."""
    stats = (
        curated.sort("trade_date")
        .group_by("symbol")
        .agg(
            pl.len().alias("rows"),
            pl.col("trade_date").first().alias("first"),
            pl.col("trade_date").last().alias("last"),
            pl.col(P).drop_nulls().first().alias("p0"),
            pl.col(P).drop_nulls().last().alias("p1"),
            pl.col("volatility_20d").drop_nulls().last().alias("volatility"),
        )
        .sort("symbol")
    )
    return [
        SymbolSummary(
            symbol=r["symbol"],
            rows=r["rows"],
            first=r["first"],
            last=r["last"],
            last_close=r["p1"],
            change_pct=(r["p1"] / r["p0"] - 1) * 100 if r["p0"] and r["p1"] is not None else None,
            volatility=r["volatility"],
            flags=flag_counts.get(r["symbol"].upper(), 0),
        )
        for r in stats.iter_rows(named=True)
    ]
