"""The one definition of every indicator: windows, smoothing, warm-up and units, as data.

Engines (``fdp.engines``) read these definitions instead of repeating numbers, so the Polars
and Spark implementations cannot drift apart. The meaning (architecture's indicator table):

* all indicators run per symbol over trading rows ordered by trade_date, on P, the
  split-adjusted close: ``close / product(split_coefficient of every later row)``;
* ``daily_return = (P_t / P_{t-1} - 1) * 100`` from row 2;
* ``daily_range = high - low``; ``daily_range_pct = (high - low) / close * 100``, null when
  ``close <= 0``; both as traded, from row 1;
* ``volume_change_pct = (V_t / (V_{t-1} * split_t) - 1) * 100`` from row 2 (the previous volume
  in today's split basis), null when that is 0;
* ``sma_n`` = mean of the last n P, from row n; a window holding a missing P is null;
* ``ema_n``: alpha = 2 / (n + 1), seeded with ``sma_n`` at the first row where ``sma_n`` exists
  (row n when no P is missing: TA-Lib's convention), then ``alpha * P_t + (1 - alpha) * ema_{t-1}``;
  a missing P leaves the EMA unchanged, so its last value is always the whole recursion state;
* ``volatility_20d`` = sample standard deviation (ddof 1) of the last 20 daily returns, from
  row 21, not annualised; a window holding a missing return is null;
* every value that would be infinite or NaN is null.
"""

from __future__ import annotations

from dataclasses import dataclass

PERCENT = 100.0
"""Returns, ranges and changes are in percent."""


@dataclass(frozen=True, slots=True)
class Sma:
    """Simple moving average of the last ``window`` P."""

    column: str
    window: int

    @property
    def first_row(self) -> int:
        return self.window


@dataclass(frozen=True, slots=True)
class Ema:
    """Exponential moving average, seeded with the SMA of the same span."""

    column: str
    span: int

    @property
    def alpha(self) -> float:
        return 2.0 / (self.span + 1)

    @property
    def first_row(self) -> int:
        return self.span


@dataclass(frozen=True, slots=True)
class Volatility:
    """Sample standard deviation of the last ``window`` daily returns."""

    column: str
    window: int
    ddof: int

    @property
    def first_row(self) -> int:
        return self.window + 1


SMAS = (Sma("sma_5", 5), Sma("sma_20", 20), Sma("sma_50", 50))
EMAS = (Ema("ema_12", 12), Ema("ema_26", 26))
VOLATILITY = Volatility("volatility_20d", 20, ddof=1)

P = "split_adjusted_close"
"""The column holding P, the basis of every price indicator."""

INDICATOR_COLUMNS = (
    P,
    "daily_return",
    "daily_range",
    "daily_range_pct",
    "volume_change_pct",
    *(s.column for s in SMAS),
    *(e.column for e in EMAS),
    VOLATILITY.column,
)

STATE_ROWS = max(*(s.window - 1 for s in SMAS), *(e.span - 1 for e in EMAS), VOLATILITY.window, 1)
"""Rows of a symbol's history, before its first recomputed row, that an incremental run needs.

With these rows (their P, volume and stored EMAs) every window and seed of the recomputed rows is
the same as in a computation over the full history, so incremental and full runs agree.
"""
