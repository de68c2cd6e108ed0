"""An independent reference for the indicators, in plain Python, from the architecture's table.

Written from the definitions (loops over one symbol's rows), not from any engine's code, so
engines are checked against a second reading of the same contract.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class Bar:
    close: float | None
    high: float | None
    low: float | None
    volume: int
    split: float


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _div(a: float, b: float) -> float | None:
    return None if b == 0 else a / b


def indicators(bars: Sequence[Bar]) -> list[dict[str, float | None]]:
    """Per row: P, daily_return, daily_range(_pct), volume_change_pct, SMAs, EMAs, volatility."""
    n = len(bars)
    p: list[float | None] = []
    for t in range(n):
        later = 1.0
        for u in range(t + 1, n):
            later *= bars[u].split
        close = bars[t].close
        p.append(None if close is None else _finite(close / later))
    rows: list[dict[str, float | None]] = []
    returns: list[float | None] = []
    ema_state: dict[int, float | None] = {12: None, 26: None}
    for t, bar in enumerate(bars):
        row: dict[str, float | None] = {"split_adjusted_close": p[t]}
        ret = None
        if t >= 1 and p[t] is not None and p[t - 1] is not None:
            q = _div(p[t], p[t - 1])  # type: ignore[arg-type]
            ret = None if q is None else _finite((q - 1) * 100)
        returns.append(ret)
        row["daily_return"] = ret
        rng = None if bar.high is None or bar.low is None else bar.high - bar.low
        row["daily_range"] = rng
        row["daily_range_pct"] = (
            _finite(rng / bar.close * 100)
            if rng is not None and bar.close is not None and bar.close > 0
            else None
        )
        vc = None
        if t >= 1:
            prev = bars[t - 1].volume * bar.split
            vc = None if prev == 0 else _finite((bar.volume / prev - 1) * 100)
        row["volume_change_pct"] = vc
        for w in (5, 20, 50):
            window = p[t - w + 1 : t + 1] if t >= w - 1 else []
            ok = len(window) == w and all(v is not None for v in window)
            row[f"sma_{w}"] = _finite(math.fsum(window) / w) if ok else None  # type: ignore[arg-type]
        for span in (12, 26):
            alpha = 2 / (span + 1)
            prev_ema = ema_state[span]
            if prev_ema is None:
                window = p[t - span + 1 : t + 1] if t >= span - 1 else []
                if len(window) == span and all(v is not None for v in window):
                    ema_state[span] = math.fsum(window) / span  # type: ignore[arg-type]
            elif p[t] is not None:
                ema_state[span] = alpha * p[t] + (1 - alpha) * prev_ema  # type: ignore[operator]
            row[f"ema_{span}"] = _finite(ema_state[span])
        window_r = returns[t - 19 : t + 1] if t >= 20 else []
        row["volatility_20d"] = (
            _finite(statistics.stdev(window_r))  # type: ignore[type-var]
            if len(window_r) == 20 and all(v is not None for v in window_r)
            else None
        )
        rows.append(row)
    return rows
