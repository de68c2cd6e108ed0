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
    _momentum(bars, p, rows)
    return rows


def _smooth(xs: Sequence[float | None], alpha: float, seed: int) -> list[float | None]:
    """y = alpha * x + (1 - alpha) * y, seeded with the mean of the first full window of x;
    a missing x leaves y unchanged."""
    y: float | None = None
    out: list[float | None] = []
    for t, x in enumerate(xs):
        if y is None:
            window = xs[t - seed + 1 : t + 1] if t >= seed - 1 else []
            if len(window) == seed and all(v is not None for v in window):
                y = math.fsum(window) / seed  # type: ignore[arg-type]
        elif x is not None:
            y = alpha * x + (1 - alpha) * y
        out.append(_finite(y))
    return out


def _momentum(
    bars: Sequence[Bar], p: list[float | None], rows: list[dict[str, float | None]]
) -> None:
    """RSI 14 (Wilder), MACD 12/26/9, Bollinger 20/2 (population) and ATR 14 (Wilder) on the
    split-adjusted basis, from their textbook definitions (TA-Lib's seeds)."""
    n = len(bars)
    factor = [1.0] * n
    for t in range(n - 2, -1, -1):
        factor[t] = factor[t + 1] * bars[t + 1].split
    up: list[float | None] = [None]
    down: list[float | None] = [None]
    true_range: list[float | None] = [None]
    for t in range(1, n):
        now, before = p[t], p[t - 1]
        change = None if now is None or before is None else now - before
        up.append(None if change is None else max(change, 0.0))
        down.append(None if change is None else max(-change, 0.0))
        high, low = bars[t].high, bars[t].low
        if high is None or low is None or before is None:
            true_range.append(None)
        else:
            h, lo = high / factor[t], low / factor[t]
            true_range.append(_finite(max(h - lo, abs(h - before), abs(lo - before))))
    gains, losses = _smooth(up, 1 / 14, 14), _smooth(down, 1 / 14, 14)
    atr = _smooth(true_range, 1 / 14, 14)
    macd = [
        None if r["ema_12"] is None or r["ema_26"] is None else _finite(r["ema_12"] - r["ema_26"])
        for r in rows
    ]
    signal = _smooth(macd, 2 / 10, 9)
    for t, row in enumerate(rows):
        g, lo = gains[t], losses[t]
        row["rsi_14_avg_gain"], row["rsi_14_avg_loss"] = g, lo
        row["rsi_14"] = None if g is None or lo is None or g + lo == 0 else 100 * g / (g + lo)
        row["macd"], row["macd_signal"] = macd[t], signal[t]
        row["macd_hist"] = None if macd[t] is None or signal[t] is None else macd[t] - signal[t]  # type: ignore[operator]
        window = p[t - 19 : t + 1] if t >= 19 else []
        full = len(window) == 20 and all(v is not None for v in window)
        spread = 2 * statistics.pstdev(window) if full else None  # type: ignore[type-var]
        middle = row["sma_20"]
        ok = spread is not None and middle is not None
        row["bb_upper_20"] = _finite(middle + spread) if ok else None  # type: ignore[operator]
        row["bb_lower_20"] = _finite(middle - spread) if ok else None  # type: ignore[operator]
        row["atr_14"] = atr[t]
