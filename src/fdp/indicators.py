"""The indicator registry: every indicator declared once, as data.

An indicator is a named column and an expression over the kernel's primitives (columns, lags,
rolling mean/std/min/max/sum, recursive smoothing, arithmetic). The expression fixes everything
else: its inputs, its warm-up (the stored rows an incremental run needs before its first
recomputed row) and so ``STATE_ROWS``. One kernel (``fdp.transform.kernel``) renders the
expressions for every engine, so an indicator cannot mean two things.

Shared meaning (architecture's indicator table), per symbol over trading rows ordered by
trade_date:

* ``P`` is the split-adjusted close (close divided by the product of every later split
  coefficient); ``split_adjusted_high`` / ``_low`` / ``_open`` likewise. Dividends are not
  adjusted (price return).
* A window holding a missing value, or reaching before the symbol's first row, is null: no
  partial windows. Every value that would be infinite or NaN is null.
* Recursive smoothing (``ema``, ``wilder``) is seeded with the simple mean of the first full
  window of its input (TA-Lib's convention) and then carried row to row; a missing input leaves
  it unchanged, so its stored value is the whole recursion state of an incremental run.

User indicators come from modules named in ``FDP_INDICATORS`` or from installed packages'
``fdp.indicators`` entry points; each calls ``register``. Their columns are stored in the lake
and the warehouse like the built-ins'.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Literal

from fdp.errors import ConfigError

PERCENT = 100.0
"""Returns, ranges and changes are in percent."""

P = "split_adjusted_close"
"""The column holding P, the basis of every price indicator."""

BASES = (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "split_coefficient",
    P,
    "split_adjusted_open",
    "split_adjusted_high",
    "split_adjusted_low",
)
"""The columns an expression may read besides other indicators: the bar as traded and its
split-adjusted prices (only P is stored; the other adjusted prices exist while computing)."""

Stat = Literal["mean", "std", "min", "max", "sum"]


class Expr:
    """A node of an indicator's expression; arithmetic builds new nodes."""

    @property
    def lookback(self) -> int:
        """Rows before the current one whose values this node reads."""
        raise NotImplementedError

    def children(self) -> tuple[Expr, ...]:
        return ()

    def __add__(self, other: Expr | float) -> Expr:
        return Binary("+", self, _node(other))

    def __radd__(self, other: float) -> Expr:
        return Binary("+", _node(other), self)

    def __sub__(self, other: Expr | float) -> Expr:
        return Binary("-", self, _node(other))

    def __rsub__(self, other: float) -> Expr:
        return Binary("-", _node(other), self)

    def __mul__(self, other: Expr | float) -> Expr:
        return Binary("*", self, _node(other))

    def __rmul__(self, other: float) -> Expr:
        return Binary("*", _node(other), self)

    def __truediv__(self, other: Expr | float) -> Expr:
        return Binary("/", self, _node(other))

    def __rtruediv__(self, other: float) -> Expr:
        return Binary("/", _node(other), self)

    def __neg__(self) -> Expr:
        return Binary("-", Const(0.0), self)


@dataclass(frozen=True, eq=False)
class Col(Expr):
    """A bar column (``BASES``) or another indicator, as stored on the rows before a run."""

    name: str

    @property
    def lookback(self) -> int:
        return 0


@dataclass(frozen=True, eq=False)
class Const(Expr):
    value: float

    @property
    def lookback(self) -> int:
        return 0


@dataclass(frozen=True, eq=False)
class Lag(Expr):
    """The value ``periods`` rows earlier in the symbol (null on its first rows)."""

    x: Expr
    periods: int

    @property
    def lookback(self) -> int:
        return self.x.lookback + self.periods

    def children(self) -> tuple[Expr, ...]:
        return (self.x,)


@dataclass(frozen=True, eq=False)
class Rolling(Expr):
    """A statistic of the last ``window`` values; null unless all of them exist."""

    x: Expr
    window: int
    stat: Stat
    ddof: int = 1

    @property
    def lookback(self) -> int:
        return self.x.lookback + self.window - 1

    def children(self) -> tuple[Expr, ...]:
        return (self.x,)


@dataclass(frozen=True, eq=False)
class Smooth(Expr):
    """``y_t = alpha * x_t + (1 - alpha) * y_{t-1}``, seeded with the mean of the first full
    ``seed``-row window of x; a missing x leaves y unchanged. Recursive: only an indicator's
    whole expression may be one, so its stored column carries the state."""

    x: Expr
    alpha: float
    seed: int

    @property
    def lookback(self) -> int:
        # The last stored value when seeded; else the seed's window may reach that far back.
        return max(1, self.x.lookback + self.seed - 1)

    def children(self) -> tuple[Expr, ...]:
        return (self.x,)


@dataclass(frozen=True, eq=False)
class Binary(Expr):
    op: Literal["+", "-", "*", "/", "max", "min"]
    left: Expr
    right: Expr

    @property
    def lookback(self) -> int:
        return max(self.left.lookback, self.right.lookback)

    def children(self) -> tuple[Expr, ...]:
        return (self.left, self.right)


@dataclass(frozen=True, eq=False)
class Abs(Expr):
    x: Expr

    @property
    def lookback(self) -> int:
        return self.x.lookback

    def children(self) -> tuple[Expr, ...]:
        return (self.x,)


def _node(value: Expr | float) -> Expr:
    return value if isinstance(value, Expr) else Const(float(value))


# The primitives a user composes indicators from.


def col(name: str) -> Col:
    return Col(name)


def lag(x: Expr, periods: int = 1) -> Expr:
    return Lag(x, _positive(periods, "periods"))


def diff(x: Expr, periods: int = 1) -> Expr:
    return x - lag(x, periods)


def rolling_mean(x: Expr, window: int) -> Expr:
    return Rolling(x, _positive(window, "window"), "mean")


def rolling_sum(x: Expr, window: int) -> Expr:
    return Rolling(x, _positive(window, "window"), "sum")


def rolling_std(x: Expr, window: int, ddof: int = 1) -> Expr:
    if ddof not in (0, 1):
        raise ConfigError(f"rolling_std: ddof must be 0 (population) or 1 (sample), got {ddof}")
    return Rolling(x, _positive(window, "window"), "std", ddof)


def rolling_min(x: Expr, window: int) -> Expr:
    return Rolling(x, _positive(window, "window"), "min")


def rolling_max(x: Expr, window: int) -> Expr:
    return Rolling(x, _positive(window, "window"), "max")


def ema(x: Expr, span: int) -> Expr:
    """Exponential moving average, alpha = 2 / (span + 1), seeded with the span's mean."""
    return Smooth(x, 2.0 / (_positive(span, "span") + 1), span)


def wilder(x: Expr, period: int) -> Expr:
    """Wilder's smoothing (RSI, ATR), alpha = 1 / period, seeded with the period's mean."""
    return Smooth(x, 1.0 / _positive(period, "period"), period)


def maximum(a: Expr | float, b: Expr | float) -> Expr:
    """The larger of two values (null when either is)."""
    return Binary("max", _node(a), _node(b))


def minimum(a: Expr | float, b: Expr | float) -> Expr:
    return Binary("min", _node(a), _node(b))


def absolute(x: Expr) -> Expr:
    return Abs(x)


def _positive(value: int, what: str) -> int:
    if not isinstance(value, int) or value < 1:
        raise ConfigError(f"indicator {what} must be a positive integer, got {value!r}")
    return value


@dataclass(frozen=True, eq=False)
class Indicator:
    """One stored column: its expression and the convention it follows (for the docs)."""

    name: str
    expr: Expr
    convention: str = ""

    @property
    def inputs(self) -> tuple[str, ...]:
        """The columns the expression reads (bars and other indicators), in first-use order."""
        return tuple(dict.fromkeys(n.name for n in _walk(self.expr) if isinstance(n, Col)))

    @property
    def warmup(self) -> int:
        """Stored rows before its first recomputed row that an incremental run needs."""
        return self.expr.lookback

    @property
    def recursive(self) -> bool:
        return isinstance(self.expr, Smooth)


def _walk(node: Expr) -> Iterable[Expr]:
    yield node
    for child in node.children():
        yield from _walk(child)


_REGISTRY: dict[str, Indicator] = {}
_version = 0


def register(indicator: Indicator) -> Indicator:
    """Add ``indicator`` (its column appears in the lake and warehouse schemas from now on).

    Registering the same definition twice is a no-op; a different one under a taken name, an
    unknown input, a recursion nested inside an expression or a bad name is a ``ConfigError``.
    """
    global _version
    name = indicator.name
    if not name.isidentifier() or name != name.lower() or name.startswith("_"):
        raise ConfigError(f"indicator name {name!r}: use lower_snake_case (a SQL column name)")
    if name in BASES or name in _RESERVED:
        raise ConfigError(f"indicator name {name!r} is taken by a curated column")
    old = _REGISTRY.get(name)
    if old is not None:
        if _same(old.expr, indicator.expr):
            return old
        raise ConfigError(f"indicator {name!r} is already registered with another definition")
    unknown = [i for i in indicator.inputs if i not in BASES and i not in _REGISTRY]
    if unknown:
        raise ConfigError(
            f"indicator {name!r} reads unknown column(s) {unknown}",
            hint=f"inputs are {list(BASES)} or indicators registered before it",
        )
    if any(isinstance(n, Smooth) for n in _walk(indicator.expr) if n is not indicator.expr):
        raise ConfigError(
            f"indicator {name!r}: ema/wilder must be a whole indicator, not part of one",
            hint="register the smoothing as its own indicator and refer to it with col(...)",
        )
    _REGISTRY[name] = indicator
    _version += 1
    return indicator


def _same(a: Expr, b: Expr) -> bool:
    return repr(a) == repr(b)


_RESERVED = frozenset(
    {"price_id", "symbol", "trade_date", "trade_timestamp", "adjusted_close", "dividend_amount"}
    | {"year", "quarter", "month", "day", "day_of_week", "processing_timestamp", "ingest_date"}
)


def registry() -> tuple[Indicator, ...]:
    """Every registered indicator, in registration order (dependencies first)."""
    return tuple(_REGISTRY.values())


def version() -> int:
    """Changes whenever an indicator is registered (schemas derived from the registry use it)."""
    return _version


def columns() -> tuple[str, ...]:
    """The stored indicator columns, in order."""
    return tuple(_REGISTRY)


def computed_columns() -> tuple[str, ...]:
    """P and every indicator column: the values a run computes (compared with a tolerance)."""
    return (P, *_REGISTRY)


def get(name: str) -> Indicator:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown indicator {name!r}", hint=f"known: {', '.join(_REGISTRY)}"
        ) from None


def state_rows(names: Iterable[str] | None = None) -> int:
    """Rows before a symbol's first recomputed row that an incremental run reads (at least 1)."""
    chosen = _REGISTRY.values() if names is None else (get(n) for n in names)
    return max([1, *(i.warmup for i in chosen)])


def with_dependencies(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` and every indicator they read, in registration order."""
    wanted = set()
    pending = list(names)
    while pending:
        name = pending.pop()
        if name not in wanted:
            wanted.add(name)
            pending += [i for i in get(name).inputs if i in _REGISTRY]
    return tuple(n for n in _REGISTRY if n in wanted)


def load(modules: Sequence[str] = ()) -> None:
    """Import the user modules that register indicators: ``modules`` (``FDP_INDICATORS``) and
    every installed ``fdp.indicators`` entry point. Idempotent."""
    for name, module in _entry_points():
        _import(module, f"entry point {name!r}")
    for module in modules:
        _import(module, "FDP_INDICATORS")


@functools.cache
def _entry_points() -> tuple[tuple[str, str], ...]:
    """The installed ``fdp.indicators`` entry points (scanning them costs milliseconds: once)."""
    return tuple((p.name, p.value.split(":")[0]) for p in entry_points(group="fdp.indicators"))


def _import(module: str, origin: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(
            f"{origin}: cannot import indicator module {module!r}: {exc}",
            hint="install the package or fix the module name",
        ) from exc


def _builtins() -> None:
    """The built-in indicators (architecture's table), in column order."""
    p, high, low = col(P), col("split_adjusted_high"), col("split_adjusted_low")
    for ind in (
        Indicator("daily_return", (p / lag(p) - 1) * PERCENT, "(P_t / P_{t-1} - 1) * 100"),
        Indicator("daily_range", col("high") - col("low"), "high - low, as traded"),
        Indicator(
            "daily_range_pct",
            (col("high") - col("low")) / col("close") * PERCENT,
            "(high - low) / close * 100, as traded; null when close is 0",
        ),
        Indicator(
            "volume_change_pct",
            (col("volume") / (lag(col("volume")) * col("split_coefficient")) - 1) * PERCENT,
            "against the previous volume in today's split basis; null when that is 0",
        ),
        *(
            Indicator(f"sma_{n}", rolling_mean(p, n), f"mean of the last {n} P")
            for n in (5, 20, 50)
        ),
        *(
            Indicator(f"ema_{n}", ema(p, n), f"EMA of P, alpha 2/{n + 1}, seeded with sma_{n}")
            for n in (12, 26)
        ),
        Indicator(
            "volatility_20d",
            rolling_std(col("daily_return"), 20, ddof=1),
            "sample standard deviation (ddof 1) of the last 20 daily returns, not annualised",
        ),
        Indicator(
            "rsi_14_avg_gain",
            wilder(maximum(diff(p), 0.0), 14),
            "Wilder-smoothed gain of P; RSI's recursion state (TA-Lib seed: mean of 14 gains)",
        ),
        Indicator(
            "rsi_14_avg_loss",
            wilder(maximum(-diff(p), 0.0), 14),
            "Wilder-smoothed loss of P; RSI's recursion state",
        ),
        Indicator(
            "rsi_14",
            PERCENT * col("rsi_14_avg_gain") / (col("rsi_14_avg_gain") + col("rsi_14_avg_loss")),
            "RSI 14, Wilder (TA-Lib's RSI from row 15); null on a flat window (0/0), where "
            "TA-Lib returns 0",
        ),
        Indicator(
            "macd",
            col("ema_12") - col("ema_26"),
            "ema_12 - ema_26 from row 26 (TA-Lib's MACD seeds its fast EMA at row 15 instead; "
            "the two agree to 1e-9 after about 150 rows)",
        ),
        Indicator("macd_signal", ema(col("macd"), 9), "EMA 9 of macd, seeded with its mean"),
        Indicator("macd_hist", col("macd") - col("macd_signal"), "macd - macd_signal"),
        Indicator(
            "bb_upper_20",
            col("sma_20") + 2 * rolling_std(p, 20, ddof=0),
            "sma_20 + 2 population standard deviations of P (Bollinger's and TA-Lib's)",
        ),
        Indicator(
            "bb_lower_20",
            col("sma_20") - 2 * rolling_std(p, 20, ddof=0),
            "sma_20 - 2 population standard deviations of P",
        ),
        Indicator(
            "atr_14",
            wilder(
                maximum(maximum(high - low, absolute(high - lag(p))), absolute(low - lag(p))),
                14,
            ),
            "Wilder-smoothed true range of split-adjusted high/low/close, from row 15 (TA-Lib)",
        ),
    ):
        register(ind)


_builtins()
BUILTINS = columns()
"""The built-in indicator columns (user indicators come after them)."""

STATE_ROWS = state_rows()
"""Rows of a symbol's history, before its first recomputed row, that an incremental run needs
for the built-ins: with them every window and seed of the recomputed rows is what a full
computation gives. ``state_rows()`` adds user indicators' warm-ups."""
