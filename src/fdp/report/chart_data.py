"""What a symbol's chart shows, as the JSON its page's script draws: candles, indicator lines,
volume and quality markers.

Every price on the chart is on the split-adjusted basis P, the basis of every indicator
(``fdp.indicators.P``): candles as traded would jump at a split while the moving averages do
not, and the overlays would stop lining up with the bars. The indicator lines are read by name
from ``fdp.indicators``, so a new moving average appears without touching the report.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import polars as pl

from fdp import indicators
from fdp.indicators import Col, P, Rolling, Smooth
from fdp.quality.report import ValidationReport

SIGNIFICANT_DIGITS = 7
"""Digits kept per value: more than a chart can show, and half the bytes of a full float."""


@dataclass(frozen=True, slots=True)
class Line:
    """One indicator column drawn as a line, with its legend label and colour."""

    column: str
    label: str
    color: str


_OVERLAY_COLORS = ("#2962ff", "#8250df", "#f57c00", "#c2185b", "#6d4c41", "#00838f")


def _moving_averages() -> list[tuple[str, str]]:
    """(column, label) of every registered moving average of P: an SMA or an EMA."""
    found = []
    for indicator in indicators.registry():
        node = indicator.expr
        if not isinstance(node, Rolling | Smooth) or not isinstance(node.x, Col):
            continue
        if node.x.name != indicators.P:
            continue
        if isinstance(node, Rolling) and node.stat == "mean":
            found.append((indicator.name, f"SMA {node.window}"))
        elif isinstance(node, Smooth) and node.alpha == 2 / (node.seed + 1):
            found.append((indicator.name, f"EMA {node.seed}"))
    return found


OVERLAYS = tuple(
    Line(column, label, _OVERLAY_COLORS[k % len(_OVERLAY_COLORS)])
    for k, (column, label) in enumerate(_moving_averages())
)
"""Lines on the price pane: every moving average of P that ``fdp.indicators`` registers."""

PANES = (
    Line("volatility_20d", "volatility 20d %", "#cf222e"),
    Line("rsi_14", "RSI 14", "#6f42c1"),
)
"""Lines below the volume pane, one pane each (not on the price basis)."""


@dataclass(frozen=True, slots=True)
class Flag:
    """A quality rule that failed on one (symbol, date) key of a batch."""

    source: str
    ingest_date: dt.date
    rule: str
    symbol: str
    """The symbol as the vendor wrote it."""
    date: str
    """The date as the vendor wrote it: it may not be a valid date (that can be the failure)."""


def flags(validations: Iterable[ValidationReport]) -> dict[str, list[Flag]]:
    """Every failing key the reports name (at most ``KEYS_IN_REPORT`` per rule and batch), by
    upper-cased symbol: a vendor may send ``aapl``, which the curated rows spell ``AAPL``."""
    found: dict[str, list[Flag]] = {}
    for flag in _flags(validations):
        found.setdefault(flag.symbol.upper(), []).append(flag)
    return found


def _flags(validations: Iterable[ValidationReport]) -> list[Flag]:
    return [
        Flag(v.source, v.ingest_date, r.rule, symbol, date)
        for v in validations
        for r in v.failures
        for symbol, date in r.failing_keys
    ]


def chart_rows(curated: pl.DataFrame) -> pl.DataFrame:
    """The drawn columns of every symbol's rows, in one pass over all of them, by (symbol,
    date): dates as text, OHLC and volume on the P basis, the indicator lines."""
    basis = pl.when(pl.col("close") > 0).then(pl.col(P) / pl.col("close"))
    return curated.sort("symbol", "trade_date").select(
        "symbol",
        pl.col("trade_date").dt.to_string("%Y-%m-%d").alias("time"),
        *((pl.col(c) * basis).round_sig_figs(SIGNIFICANT_DIGITS).alias(c) for c in _OHL),
        pl.col(P).round_sig_figs(SIGNIFICANT_DIGITS).alias("close"),
        (pl.col("volume") / basis).round(0).alias("volume"),
        *(pl.col(line.column).round_sig_figs(SIGNIFICANT_DIGITS) for line in OVERLAYS + PANES),
    )


def payload(symbol: str, rows: pl.DataFrame, flagged: Sequence[Flag]) -> dict[str, Any]:
    """The chart of one symbol from its ``chart_rows``, with a marker on each bar a quality
    rule flagged."""
    times = rows["time"].to_list()
    return {
        "symbol": symbol,
        "time": times,
        **{c: rows[c].to_list() for c in (*_OHL, "close", "volume")},
        "overlays": [_line(line, rows) for line in OVERLAYS],
        "panes": [_line(line, rows) for line in PANES],
        "markers": _markers(set(times), flagged),
    }


_OHL = ("open", "high", "low")


def _line(line: Line, frame: pl.DataFrame) -> dict[str, Any]:
    return {"label": line.label, "color": line.color, "values": frame[line.column].to_list()}


def _markers(times: set[str], flagged: Sequence[Flag]) -> list[dict[str, str]]:
    """One marker per flagged bar on the chart, naming its rules (a key whose date is not a
    bar of the chart, such as a rejected row, is listed in the page's table only)."""
    rules: dict[str, list[str]] = {}
    for f in flagged:
        if f.date in times and f.rule not in rules.setdefault(f.date, []):
            rules[f.date].append(f.rule)
    return [{"time": t, "text": ", ".join(names)} for t, names in sorted(rules.items())]


def script_json(data: dict[str, Any]) -> str:
    """``data`` as JSON that is safe inside ``<script type="application/json">``: ``<``, ``>``
    and ``&`` (which JSON only has inside strings) become ``\\u`` escapes, so no value can close
    the element or open a comment, whatever a symbol or a rule name holds."""
    text = orjson.dumps(data).decode()
    for char, escaped in _SCRIPT_ESCAPES:
        text = text.replace(char, escaped)
    return text


_SCRIPT_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"))
