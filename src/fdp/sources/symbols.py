"""Simulated symbols: their parameters, the presets, the regimes and user parameter files.

The warehouse's ``dim_symbol`` reads name, sector and exchange from ``symbol_parameters``,
so a symbol is described in exactly one place whether it is simulated or fetched.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from fdp.errors import ConfigError
from fdp.records import TICKER_RE


@dataclass(frozen=True, slots=True)
class SymbolParams:
    """What the simulator needs to know about one symbol (mu, sigma annualised).

    ``beta`` is the loading on the standardised market factor: the correlation of the
    symbol's shocks with the market. ``|beta| <= 1`` keeps each symbol's variance sigma^2,
    so the marginal law of every path stays the exact GBM.
    """

    symbol: str
    name: str
    sector: str
    exchange: str
    start_price: float
    mu: float
    sigma: float
    dividend_yield: float
    split_probability: float
    volume_base: float
    beta: float

    def __post_init__(self) -> None:
        problems = [
            f"{label} {getattr(self, field)!r}"
            for field, label, ok in (
                ("start_price", "start_price must be > 0, got", self.start_price > 0),
                ("sigma", "sigma must be >= 0, got", self.sigma >= 0),
                (
                    "dividend_yield",
                    "dividend_yield must be in [0, 1), got",
                    0 <= self.dividend_yield < 1,
                ),
                (
                    "split_probability",
                    "split_probability must be in [0, 1], got",
                    0 <= self.split_probability <= 1,
                ),
                ("volume_base", "volume_base must be > 0, got", self.volume_base > 0),
                ("beta", "beta must be in [-1, 1], got", -1 <= self.beta <= 1),
            )
            if not ok or not np.isfinite(getattr(self, field))
        ]
        if not np.isfinite(self.mu):
            problems.append(f"mu must be finite, got {self.mu!r}")
        if problems:
            raise ConfigError(f"symbol {self.symbol}: " + "; ".join(problems))


def _known(
    symbol: str,
    name: str,
    sector: str,
    exchange: str,
    price: float,
    mu: float,
    sigma: float,
    dividend_yield: float,
    split_probability: float,
    volume_base: float,
    beta: float,
) -> SymbolParams:
    return SymbolParams(
        symbol,
        name,
        sector,
        exchange,
        price,
        mu,
        sigma,
        dividend_yield,
        split_probability,
        volume_base,
        beta,
    )


KNOWN: dict[str, SymbolParams] = {
    p.symbol: p
    for p in (
        _known(
            "AAPL", "Apple Inc.", "Technology", "NASDAQ", 180, 0.08, 0.30, 0.005, 0.04, 5.5e7, 0.75
        ),
        _known(
            "GOOGL",
            "Alphabet Inc.",
            "Communication Services",
            "NASDAQ",
            140,
            0.10,
            0.35,
            0.0,
            0.03,
            2.5e7,
            0.70,
        ),
        _known(
            "MSFT",
            "Microsoft Corporation",
            "Technology",
            "NASDAQ",
            370,
            0.12,
            0.28,
            0.008,
            0.03,
            2.2e7,
            0.75,
        ),
        _known(
            "AMZN",
            "Amazon.com, Inc.",
            "Consumer Discretionary",
            "NASDAQ",
            155,
            0.06,
            0.40,
            0.0,
            0.03,
            4.5e7,
            0.65,
        ),
        _known(
            "TSLA",
            "Tesla, Inc.",
            "Consumer Discretionary",
            "NASDAQ",
            240,
            0.03,
            0.55,
            0.0,
            0.05,
            1.0e8,
            0.55,
        ),
        _known(
            "NVDA",
            "NVIDIA Corporation",
            "Technology",
            "NASDAQ",
            500,
            0.20,
            0.50,
            0.0003,
            0.06,
            4.0e7,
            0.65,
        ),
        _known(
            "META",
            "Meta Platforms, Inc.",
            "Communication Services",
            "NASDAQ",
            350,
            0.08,
            0.38,
            0.005,
            0.02,
            1.6e7,
            0.65,
        ),
        _known(
            "JPM",
            "JPMorgan Chase & Co.",
            "Financials",
            "NYSE",
            150,
            0.06,
            0.22,
            0.028,
            0.01,
            9.0e6,
            0.70,
        ),
    )
}

_SECTORS = (
    "Technology",
    "Financials",
    "Health Care",
    "Industrials",
    "Energy",
    "Utilities",
    "Consumer Discretionary",
    "Consumer Staples",
    "Materials",
    "Real Estate",
    "Communication Services",
)
_EXCHANGES = ("NYSE", "NASDAQ")


def validate_ticker(symbol: str) -> str:
    """``symbol`` if it is a valid ticker; ``ConfigError`` naming it otherwise."""
    if not TICKER_RE.match(symbol):
        raise ConfigError(f"invalid ticker {symbol!r}: expected {TICKER_RE.pattern}")
    return symbol


def symbol_parameters(symbol: str) -> SymbolParams:
    """The parameters of ``symbol``: the known table, else derived from its name.

    Derivation hashes the ticker, so any valid ticker always gets the same parameters.
    """
    validate_ticker(symbol)
    if symbol in KNOWN:
        return KNOWN[symbol]
    digest = hashlib.blake2b(symbol.encode(), digest_size=32, person=b"fdp-symbol").digest()
    u = np.frombuffer(digest, dtype="<u4") / 2.0**32
    return SymbolParams(
        symbol=symbol,
        name=f"{symbol} Holdings (simulated)",
        sector=_SECTORS[int(u[0] * len(_SECTORS))],
        exchange=_EXCHANGES[int(u[1] * len(_EXCHANGES))],
        start_price=round(float(np.exp(np.log(10) + u[2] * np.log(50))), 2),
        mu=round(float(0.02 + 0.13 * u[3]), 4),
        sigma=round(float(0.15 + 0.45 * u[4]), 4),
        dividend_yield=0.0 if u[5] < 0.4 else round(float(0.04 * u[6]), 4),
        split_probability=round(float(0.05 * u[7]), 4),
        volume_base=float(round(np.exp(np.log(1e5) + u[7] * np.log(500)))),
        beta=round(float(0.3 + 0.6 * u[6]), 4),
    )


@dataclass(frozen=True, slots=True)
class Preset:
    """A named scenario: which symbols, from which date, for how many sessions."""

    symbols: tuple[str, ...]
    start: dt.date
    sessions: int


_EIGHT = tuple(KNOWN)
DEFAULT_START = dt.date(2024, 1, 2)
PRESETS: dict[str, Preset] = {
    "demo": Preset(_EIGHT[:5], DEFAULT_START, 61),
    "small": Preset(_EIGHT[:3], DEFAULT_START, 21),
    "medium": Preset(_EIGHT, DEFAULT_START, 126),
    "large": Preset(_EIGHT, DEFAULT_START, 252),
    "stress": Preset(_EIGHT, DEFAULT_START, 365),
}


def preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; expected one of {', '.join(PRESETS)}")
    return PRESETS[name]


def universe(count: int) -> list[str]:
    """``count`` synthetic tickers (SYN00001, ...) for scale tests."""
    if not 0 < count <= 99_999:
        raise ConfigError(f"universe size must be in 1..99999, got {count}")
    return [f"SYN{i:05d}" for i in range(1, count + 1)]


REGIMES: dict[str, tuple[float, float]] = {
    "normal": (1.0, 1.0),
    "bullish": (2.5, 0.9),
    "bearish": (-2.0, 1.3),
    "volatile": (1.0, 2.0),
    "stable": (1.0, 0.5),
}
"""Regime name -> (multiplier on mu, multiplier on sigma)."""


def apply_regime(params: SymbolParams, regime: str) -> SymbolParams:
    if regime not in REGIMES:
        raise ConfigError(f"unknown regime {regime!r}; expected one of {', '.join(REGIMES)}")
    mu_x, sigma_x = REGIMES[regime]
    return dataclasses.replace(params, mu=params.mu * mu_x, sigma=params.sigma * sigma_x)


@dataclass(frozen=True, slots=True)
class ParamFile:
    """A user parameter file: per-symbol overrides and an optional correlation matrix."""

    symbols: dict[str, SymbolParams]
    correlation: np.ndarray | None
    correlation_symbols: tuple[str, ...]


_OVERRIDABLE = {f.name for f in dataclasses.fields(SymbolParams)} - {"symbol"}


def load_param_file(path: str | Path) -> ParamFile:
    """Read a YAML or JSON parameter file; any problem is a ``ConfigError`` naming the file.

    Shape::

        symbols:
          AAPL: {mu: 0.1, sigma: 0.25}   # unspecified fields keep their defaults
          XYZ: {start_price: 20}
        correlation:                     # optional; symmetric, unit diagonal
          symbols: [AAPL, XYZ]
          matrix: [[1, 0.5], [0.5, 1]]
    """
    path = Path(path)
    try:
        text = path.read_text()
        doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"parameter file {path}: cannot read ({_one_line(exc)})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("symbols"), dict) or not doc["symbols"]:
        raise ConfigError(f"parameter file {path}: expected a mapping with a 'symbols' mapping")
    unknown_top = set(doc) - {"symbols", "correlation"}
    if unknown_top:
        raise ConfigError(f"parameter file {path}: unknown key(s) {sorted(unknown_top)}")
    symbols = {
        str(sym): _override(path, str(sym), fields) for sym, fields in doc["symbols"].items()
    }
    matrix, order = _correlation(path, doc.get("correlation"), symbols)
    return ParamFile(symbols, matrix, order)


def _one_line(exc: Exception) -> str:
    """A parser's complaint on one line: YAML's own message spans several, with a caret."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"{exc.problem} at line {mark.line + 1}, column {mark.column + 1}"
    return " ".join(str(exc).split())


def _override(path: Path, symbol: str, fields: Any) -> SymbolParams:
    try:
        validate_ticker(symbol)
    except ConfigError as exc:
        raise ConfigError(f"parameter file {path}: {exc}") from None
    if fields is None:
        fields = {}
    if not isinstance(fields, Mapping):
        raise ConfigError(f"parameter file {path}: {symbol}: expected a mapping of fields")
    unknown = set(fields) - _OVERRIDABLE
    if unknown:
        raise ConfigError(
            f"parameter file {path}: {symbol}: unknown field(s) {sorted(unknown)};"
            f" allowed: {sorted(_OVERRIDABLE)}"
        )
    clean: dict[str, Any] = {}
    for key, value in fields.items():
        text_field = key in ("name", "sector", "exchange")
        if text_field != isinstance(value, str) or isinstance(value, bool):
            kind = "text" if text_field else "a number"
            raise ConfigError(f"parameter file {path}: {symbol}.{key} must be {kind}: {value!r}")
        clean[key] = value if text_field else float(value)
    try:
        return dataclasses.replace(symbol_parameters(symbol), **clean)
    except ConfigError as exc:
        raise ConfigError(f"parameter file {path}: {exc}") from None


def _correlation(
    path: Path, spec: Any, symbols: Mapping[str, SymbolParams]
) -> tuple[np.ndarray | None, tuple[str, ...]]:
    if spec is None:
        return None, ()
    if not isinstance(spec, dict) or set(spec) != {"symbols", "matrix"}:
        raise ConfigError(f"parameter file {path}: correlation needs 'symbols' and 'matrix'")
    order = spec["symbols"]
    if not isinstance(order, list) or len(set(map(str, order))) != len(order):
        raise ConfigError(f"parameter file {path}: correlation.symbols must list distinct tickers")
    order = [validate_ticker(str(s)) for s in order]
    try:
        matrix = np.array(spec["matrix"], dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"parameter file {path}: correlation.matrix is not numeric") from None
    n = len(order)
    if matrix.shape != (n, n):
        raise ConfigError(
            f"parameter file {path}: correlation.matrix is {matrix.shape}, expected ({n}, {n})"
        )
    if not (np.isfinite(matrix).all() and np.allclose(matrix, matrix.T)):
        raise ConfigError(f"parameter file {path}: correlation.matrix must be symmetric")
    if not np.allclose(np.diag(matrix), 1.0) or (np.abs(matrix) > 1).any():
        raise ConfigError(
            f"parameter file {path}: correlation.matrix needs a unit diagonal, entries in [-1, 1]"
        )
    if np.linalg.eigvalsh(matrix).min() < -1e-10:
        raise ConfigError(f"parameter file {path}: correlation.matrix is not positive semidefinite")
    missing = [s for s in order if s not in symbols]
    if missing:
        raise ConfigError(f"parameter file {path}: correlation lists {missing} not under symbols")
    return matrix, tuple(order)


def resolve(
    symbols: Sequence[str], overrides: Mapping[str, SymbolParams] | None, regime: str
) -> list[SymbolParams]:
    """The parameters to simulate with: file overrides, else the defaults, then the regime."""
    overrides = overrides or {}
    return [
        apply_regime(overrides.get(s) or symbol_parameters(validate_ticker(s)), regime)
        for s in symbols
    ]
