"""The demo's HTML report: per symbol, price with moving averages, volume, volatility, and the
data-quality results, as one self-contained page (inline SVG, no scripts, no network).

Self-contained matters: the report is opened from a laptop, an S3 console or a CI artefact,
where a chart library fetched from a CDN may be unreachable.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import polars as pl

from fdp.quality.report import ValidationReport

WIDTH, HEIGHT, PAD = 860, 220, 44
PRICE_SERIES = (
    ("close", "#24292f", 1.6),
    ("sma_20", "#0969da", 1.2),
    ("sma_50", "#8250df", 1.2),
    ("ema_12", "#bf8700", 1.0),
    ("ema_26", "#cf222e", 1.0),
)


@dataclass(frozen=True, slots=True)
class Chart:
    """One panel: named series over the trade dates, drawn as lines or bars."""

    title: str
    dates: list[dt.date]
    series: list[tuple[str, list[float | None], str, float]]
    bars: bool = False


def render(curated: pl.DataFrame, validations: Sequence[ValidationReport], title: str) -> str:
    """The whole report page for the curated rows of every symbol in ``curated``."""
    sections = [_symbol_section(sym, rows) for sym, rows in _by_symbol(curated)]
    quality = "".join(_quality_section(v) for v in validations)
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{''.join(sections)}"
        f"<h2>Data quality</h2>{quality or '<p>No validation results.</p>'}</body></html>"
    )


def _by_symbol(curated: pl.DataFrame) -> list[tuple[str, pl.DataFrame]]:
    ordered = curated.sort("symbol", "trade_date")
    return [(str(key[0]), part) for key, part in ordered.group_by("symbol", maintain_order=True)]


def _symbol_section(symbol: str, rows: pl.DataFrame) -> str:
    dates = rows["trade_date"].to_list()
    charts = [
        Chart(
            f"{symbol}: close, SMA 20/50, EMA 12/26",
            dates,
            [(c, rows[c].to_list(), color, w) for c, color, w in PRICE_SERIES],
        ),
        Chart(
            f"{symbol}: volume", dates, [("volume", rows["volume"].to_list(), "#57606a", 1)], True
        ),
        Chart(
            f"{symbol}: 20-day volatility of daily returns (%)",
            dates,
            [("volatility_20d", rows["volatility_20d"].to_list(), "#cf222e", 1.4)],
        ),
    ]
    return f"<section class='symbol' id='{html.escape(symbol)}'><h2>{html.escape(symbol)}</h2>" + (
        "".join(svg(c) for c in charts) + "</section>"
    )


def svg(chart: Chart) -> str:
    """A chart as inline SVG: axes, min/max labels, a legend, one path (or bars) per series."""
    values = [v for _, vs, _, _ in chart.series for v in vs if v is not None and math.isfinite(v)]
    if not values or not chart.dates:
        return f"<p class='empty'>{html.escape(chart.title)}: no data yet.</p>"
    lo, hi = (0.0 if chart.bars else min(values)), max(values)
    span = (hi - lo) or 1.0
    n = len(chart.dates)

    def x(i: float) -> float:
        return PAD + (WIDTH - 2 * PAD) * (i / max(n - 1, 1))

    def y(v: float) -> float:
        return HEIGHT - PAD + (v - lo) / span * (2 * PAD - HEIGHT)

    marks = [
        _bars(vs, color, x, y, n) if chart.bars else _line(name, vs, color, w, x, y)
        for name, vs, color, w in chart.series
    ]
    legend = "".join(
        f"<text x='{PAD + 130 * k}' y='16' fill='{color}' class='legend'>{html.escape(name)}</text>"
        for k, (name, _, color, _) in enumerate(chart.series)
    )
    bottom = HEIGHT - PAD
    axes = (
        f"<line x1='{PAD}' y1='{bottom}' x2='{WIDTH - PAD}' y2='{bottom}' class='axis'/>"
        f"<line x1='{PAD}' y1='{PAD}' x2='{PAD}' y2='{bottom}' class='axis'/>"
        f"<text x='2' y='{PAD + 4}' class='tick'>{_fmt(hi)}</text>"
        f"<text x='2' y='{HEIGHT - PAD}' class='tick'>{_fmt(lo)}</text>"
        f"<text x='{PAD}' y='{HEIGHT - PAD + 16}' class='tick'>{chart.dates[0]}</text>"
        f"<text x='{WIDTH - PAD - 70}' y='{bottom + 16}' class='tick'>{chart.dates[-1]}</text>"
    )
    return (
        f"<figure><figcaption>{html.escape(chart.title)}</figcaption>"
        f"<svg class='chart' xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{HEIGHT}' "
        f"viewBox='0 0 {WIDTH} {HEIGHT}' role='img'>{axes}{''.join(marks)}{legend}</svg></figure>"
    )


Scale = Callable[[float], float]


def _line(name: str, vs: list[float | None], color: str, width: float, x: Scale, y: Scale) -> str:
    """A path with a gap wherever the series has no value (warm-up rows stay blank)."""
    parts, pen_down = [], False
    for i, v in enumerate(vs):
        if v is None or not math.isfinite(v):
            pen_down = False
            continue
        parts.append(f"{'L' if pen_down else 'M'}{x(i):.1f},{y(v):.1f}")
        pen_down = True
    if not parts:
        return ""
    return (
        f"<path class='series' data-series='{html.escape(name)}' d='{' '.join(parts)}' "
        f"fill='none' stroke='{color}' stroke-width='{width}'/>"
    )


def _bars(vs: list[float | None], color: str, x: Scale, y: Scale, n: int) -> str:
    w = max((WIDTH - 2 * PAD) / max(n, 1) * 0.7, 1.0)
    base = y(0.0)
    rects = [
        f"<rect x='{x(i) - w / 2:.1f}' y='{y(v):.1f}' width='{w:.1f}' "
        f"height='{max(base - y(v), 0.5):.1f}' fill='{color}'/>"
        for i, v in enumerate(vs)
        if v is not None and math.isfinite(v)
    ]
    return f"<g class='series' data-series='volume'>{''.join(rects)}</g>"


def _quality_section(report: ValidationReport) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(r.rule)}</td><td class={'pass' if r.success else 'fail'}>"
        f"{'pass' if r.success else 'FAIL'}</td><td>{r.unexpected_count or 0}</td></tr>"
        for r in report.expectations
    )
    verdict = "passed" if report.success else "FAILED"
    return (
        f"<h3>{e(report.source)} batch of {report.ingest_date}: {verdict} "
        f"({report.successful_count}/{report.evaluated_count} rules, {report.row_count} rows, "
        f"{report.rejected_count} rejected)</h3><table class='dq'>"
        f"<tr><th>rule</th><th>status</th><th>unexpected</th></tr>{rows}</table>"
    )


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.2f}"


_CSS = (
    "body{font-family:sans-serif;margin:2em;color:#24292f}figure{margin:0 0 1em}"
    "figcaption{font-weight:bold;margin:.3em 0}.axis{stroke:#8c959f}.tick,.legend{font-size:11px}"
    "table{border-collapse:collapse}td,th{border:1px solid #d0d7de;padding:3px 8px}"
    ".pass{color:#1a7f37}.fail{color:#cf222e;font-weight:bold}"
)
