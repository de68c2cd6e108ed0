"""The report's HTML: an index page (one row per symbol, the quality batches) and one page per
symbol (its chart and the quality results that name it).

Every string from data, vendors or users (symbols, sources, rule names, vendor dates, titles)
passes ``_e`` on its way into markup, or ``chart_data.script_json`` into the chart's JSON; the
pages' scripts are files of the report (``assets/``), never built from data.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from fdp.quality.report import ValidationReport
from fdp.report.chart_data import Flag

_PLAIN_NAME = re.compile(r"[A-Z0-9][A-Z0-9.\-]{0,31}")
_WINDOWS_DEVICES = re.compile(r"(CON|PRN|AUX|NUL|COM\d|LPT\d)(\..*)?")
SYMBOL_DIR = "symbols"
ASSET_DIR = "assets"
SHOWN_KEYS = 50
"""Failing keys listed per rule on a symbol page (the batch's own report has them all)."""


def page_name(symbol: str) -> str:
    """The file name of ``symbol``'s page: the ticker itself when it is a plain one (links read
    well), else a digest. A symbol never names a path outside ``symbols/``, a hidden file, a
    Windows device, or (upper case only) another symbol's page on a case-blind filesystem."""
    if _PLAIN_NAME.fullmatch(symbol) and not _WINDOWS_DEVICES.fullmatch(symbol):
        return f"{symbol}.html"
    return f"x{hashlib.sha256(symbol.encode()).hexdigest()[:24]}.html"


@dataclass(frozen=True, slots=True)
class SymbolSummary:
    """One row of the index: a symbol's range, last values and quality flags."""

    symbol: str
    rows: int
    first: dt.date
    last: dt.date
    last_close: float | None
    change_pct: float | None
    volatility: float | None
    flags: int


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _head(title: str, prefix: str, scripts: Sequence[str]) -> str:
    """The page head: CSS and scripts from the report's own assets, and a policy that lets the
    page load nothing else (no network at view time, no inline script even if one got in)."""
    tags = "".join(f'<script src="{prefix}{ASSET_DIR}/{_e(s)}" defer></script>' for s in scripts)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title>"
        f'<link rel="stylesheet" href="{prefix}{ASSET_DIR}/report.css">{tags}</head><body>'
    )


def index_page(
    title: str,
    start: dt.date,
    end: dt.date,
    summaries: Sequence[SymbolSummary],
    validations: Sequence[ValidationReport],
) -> str:
    """The index: a filterable table of symbols linking to their pages, then the batches."""
    rows = "".join(
        f'<tr data-symbol="{_e(s.symbol)}">'
        f'<td><a href="{SYMBOL_DIR}/{_e(page_name(s.symbol))}">{_e(s.symbol)}</a></td>'
        f'<td class="n">{s.rows:,}</td><td>{s.first}</td><td>{s.last}</td>'
        f'<td class="n">{_num(s.last_close)}</td><td class="n">{_num(s.change_pct)}</td>'
        f'<td class="n">{_num(s.volatility)}</td>'
        f'<td class="n{" fail" if s.flags else ""}">{s.flags:,}</td></tr>'
        for s in summaries
    )
    return (
        _head(title, "", ["index.js"])
        + f"<h1>{_e(title)}</h1><p class='meta'>{start} to {end}: {len(summaries):,} symbols, "
        f"{sum(s.rows for s in summaries):,} rows; prices split-adjusted.</p>"
        '<input id="filter" type="search" placeholder="filter symbols" aria-label="filter">'
        '<table id="symbols"><thead><tr><th>symbol</th><th>rows</th><th>first</th><th>last</th>'
        "<th>last close</th><th>change %</th><th>volatility 20d %</th><th>quality flags</th>"
        f"</tr></thead><tbody>{rows}</tbody></table>"
        f"<h2>Data quality</h2>{_batches(validations)}{_footer()}</body></html>"
    )


def symbol_page(
    title: str,
    summary: SymbolSummary,
    chart_json: str,
    validations: Sequence[ValidationReport],
    flagged: Sequence[Flag],
    neighbours: tuple[str | None, str | None],
    library: str,
) -> str:
    """A symbol's page: its chart (drawn by ``assets/chart.js`` from the JSON block), links to
    the index and the symbols before and after it, and the quality results naming it."""
    before, after = neighbours
    nav = '<nav><a href="../index.html">index</a>'
    if before is not None:
        nav += f'<a href="{_e(page_name(before))}">← {_e(before)}</a>'
    if after is not None:
        nav += f'<a href="{_e(page_name(after))}">{_e(after)} →</a>'
    s = summary
    return (
        _head(f"{s.symbol}: {title}", "../", [library, "chart.js"])
        + f"{nav}</nav><h1>{_e(s.symbol)}</h1>"
        f"<p class='meta'>{s.first} to {s.last}, {s.rows:,} sessions; last close "
        f"{_num(s.last_close)}, change {_num(s.change_pct)} %. Prices and volume split-adjusted; "
        "the last 130 sessions first: scroll or drag to zoom and pan, double-click a price scale "
        "to reset it.</p>"
        '<div id="legend"></div><div id="chart"></div>'
        "<noscript>The chart needs JavaScript (it loads no network resource).</noscript>"
        f'<script type="application/json" id="fdp-data">{chart_json}</script>'
        f"<h2>Data quality</h2>{_symbol_quality(validations, flagged)}{_footer()}</body></html>"
    )


def _batches(validations: Sequence[ValidationReport]) -> str:
    """One line per validated batch; the rules of a failed batch in full."""
    if not validations:
        return "<p>No validation report for these dates.</p>"
    lines = "".join(
        f"<tr><td>{_e(v.source)}</td><td>{v.ingest_date}</td>{_verdict(v.success)}"
        f'<td class="n">{v.successful_count}/{v.evaluated_count}</td>'
        f'<td class="n">{v.row_count:,}</td><td class="n">{v.rejected_count:,}</td>'
        f"<td>{_e(', '.join(r.rule for r in v.failures))}</td><td>{_link(v.html_url)}</td></tr>"
        for v in validations
    )
    failed = "".join(_rules(v) for v in validations if not v.success)
    return (
        "<table><thead><tr><th>source</th><th>ingest date</th><th>verdict</th><th>rules</th>"
        "<th>rows</th><th>rejected</th><th>failed rules</th><th>report</th></tr></thead>"
        f"<tbody>{lines}</tbody></table>{failed}"
    )


def _rules(report: ValidationReport) -> str:
    rows = "".join(
        f"<tr><td>{_e(r.rule)}</td><td>{_e(r.description)}</td>{_verdict(r.success)}"
        f'<td class="n">{"" if r.unexpected_count is None else f"{r.unexpected_count:,}"}</td></tr>'
        for r in report.expectations
    )
    return (
        f"<h3>{_e(report.source)} batch of {report.ingest_date}</h3><table><thead><tr>"
        "<th>rule</th><th>meaning</th><th>status</th><th>unexpected</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _symbol_quality(validations: Sequence[ValidationReport], flagged: Sequence[Flag]) -> str:
    """How many batches were validated, then each failed rule's keys for this symbol (the
    batches themselves are listed once, on the index)."""
    failed = sum(not v.success for v in validations)
    summary = (
        f"<p class='meta'>{len(validations):,} batch(es) validated for these dates, {failed:,} "
        "failed: see the index.</p>"
    )
    if not flagged:
        return summary + "<p>No rule flagged this symbol.</p>"
    by_rule: dict[tuple[str, dt.date, str], list[str]] = {}
    for f in flagged:
        by_rule.setdefault((f.source, f.ingest_date, f.rule), []).append(f.date)
    rows = "".join(
        f"<tr><td>{_e(source)}</td><td>{day}</td><td class='fail'>{_e(rule)}</td>"
        f'<td class="n">{len(dates):,}</td>'
        f"<td>{_e(', '.join(dates[:SHOWN_KEYS]))}{' …' if len(dates) > SHOWN_KEYS else ''}"
        "</td></tr>"
        for (source, day, rule), dates in by_rule.items()
    )
    return (
        summary + "<table><thead><tr><th>source</th><th>ingest date</th><th>rule</th>"
        "<th>keys</th><th>dates (marked on the chart)</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _verdict(ok: bool) -> str:
    return f"<td class='{'pass' if ok else 'fail'}'>{'pass' if ok else 'FAIL'}</td>"


def _link(url: str | None) -> str:
    """A link to a batch's own report when its URL is one a browser opens safely."""
    if not url:
        return ""
    if urlsplit(url).scheme not in ("file", "http", "https"):
        return _e(url)
    return f'<a href="{_e(url)}">validation.html</a>'


def _footer() -> str:
    return (
        "<footer>Made by fdp. Charts: TradingView Lightweight Charts™, "
        '<a href="https://www.tradingview.com/">tradingview.com</a> '
        f"(Apache 2.0, see {ASSET_DIR}/NOTICE in this report).</footer>"
    )
