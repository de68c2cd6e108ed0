"""The GBM market simulator: reproducible daily bars for any ticker, landed like vendor data.

Why it is built this way:

* Draws are keyed by (seed, symbol, weekday), not by position: a Philox stream per
  (seed, symbol) whose counter is set from the weekday's index since ``EPOCH``, eight uniforms
  a weekday. A symbol's path is therefore the same whatever else is generated beside it.
* Each path is anchored: its total-return close on ``ANCHOR`` is the start price, and log
  increments are summed forwards (and backwards) from there, so any window is a pure function
  of its dates and generating [a, c] equals [a, b] followed by [b+1, c], bit for bit.
* The total-return close is exact GBM: ``x = (mu - sigma^2/2) dt + sigma sqrt(dt) Z``. The
  increment is split into an overnight and an intraday part whose variances add to
  ``sigma^2 dt``; high and low are the extremes of a Brownian bridge from open to close over the
  intraday variance, so ``low <= min(open, close) <= max(open, close) <= high`` always.
* Dividends drop the price at the open by the factor ``1 - q/4``; splits divide the as-traded
  price by their ratio. ``adjusted_close`` is back-adjusted over the generated window, as a
  vendor does, so its log returns are exactly the GBM increments.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from fdp.calendar import last_sessions, next_sessions, session_array
from fdp.config import Settings
from fdp.errors import ConfigError
from fdp.records import Frame, StockRecord
from fdp.sources.landing import RawZone
from fdp.sources.symbols import (
    DEFAULT_START,
    ParamFile,
    SymbolParams,
    load_param_file,
    resolve,
    validate_ticker,
)
from fdp.sources.symbols import preset as get_preset
from fdp.sources.vendor_json import encode_daily_adjusted

SOURCE = "simulator"
FORMATS = ("json", "parquet", "csv")
CORRELATIONS = ("none", "market", "matrix")
EXCHANGE = "XNYS"

EPOCH = np.datetime64("1990-01-01", "D")
"""Weekday 0 of every random stream (a Monday, before the calendar's first session)."""
ANCHOR = DEFAULT_START
"""The session on which every total-return close equals the symbol's start price."""
DT = 1.0 / 252.0
OVERNIGHT_SHARE = 0.2
"""Share of the daily variance (and drift) that accrues between close and next open."""
DRAWS_PER_DAY = 8
VOLUME_SIGMA = 0.35
VOLUME_SHOCK = 1.5
"""Volume scales with ``1 + VOLUME_SHOCK * |Z|``: busier on days with large moves."""
FORWARD_SPLITS = np.array([2.0, 2.0, 2.0, 3.0, 3.0, 4.0])
REVERSE_SPLIT = 0.5
CHUNK_SYMBOLS = 200
BAR_COLUMNS = (
    "trade_date",
    "symbol",
    "open",
    "high",
    "low",
    "close",
    "adjusted_close",
    "volume",
    "dividend_amount",
    "split_coefficient",
)


@dataclass(frozen=True, slots=True)
class Plan:
    """A fully validated simulation: nothing is written before one exists."""

    params: tuple[SymbolParams, ...]
    start: dt.date
    end: dt.date
    seed: int
    correlation: str
    matrix: np.ndarray | None = None
    matrix_symbols: tuple[str, ...] = ()

    @property
    def symbols(self) -> list[str]:
        return [p.symbol for p in self.params]


@dataclass
class SimulationSummary:
    """What a simulation produced: counts, first/last close per symbol, objects written."""

    start: dt.date
    end: dt.date
    symbols: int
    sessions: int
    rows: int
    closes: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)


def window(
    *, preset_name: str | None, start: dt.date | None, end: dt.date | None, days: int | None
) -> tuple[dt.date, dt.date]:
    """The [start, end] a command asks for; fixed defaults so a bare command is reproducible.

    ``days`` counts sessions from ``start`` (or back from ``end`` when only that is given);
    without it the preset's length (the demo preset's by default) applies.
    """
    if days is not None and days <= 0:
        raise ConfigError(f"--days must be > 0, got {days}")
    if days is not None and start is not None and end is not None:
        raise ConfigError("give at most two of --start, --end and --days")
    scenario = get_preset(preset_name or "demo")
    count = days or scenario.sessions
    if start is None and end is not None:
        if days is None:
            return scenario.start, end
        return last_sessions(end, count, EXCHANGE)[0], end
    start = start or scenario.start
    return start, end or next_sessions(start, count, EXCHANGE)[-1]


def plan(
    *,
    start: dt.date,
    end: dt.date,
    symbols: Sequence[str] | None = None,
    preset_name: str | None = None,
    seed: int = 42,
    regime: str = "normal",
    correlation: str | None = None,
    params: ParamFile | None = None,
) -> Plan:
    """Validate every input and settle the symbols; raises ``ConfigError`` on any bad value."""
    if symbols is None:
        if params is not None and preset_name is None:
            symbols = list(params.symbols)
        else:
            symbols = list(get_preset(preset_name or "demo").symbols)
    elif preset_name is not None:
        get_preset(preset_name)
    symbols = [validate_ticker(s) for s in symbols]
    if not symbols:
        raise ConfigError("no symbols to simulate")
    if len(set(symbols)) != len(symbols):
        raise ConfigError(f"duplicate symbols in {symbols}")
    session_array(start, end, EXCHANGE)
    _previous_session(start)
    resolved = resolve(symbols, params.symbols if params else None, regime)
    has_matrix = params is not None and params.correlation is not None
    mode = correlation or ("matrix" if has_matrix else "none")
    if mode not in CORRELATIONS:
        raise ConfigError(f"unknown correlation {mode!r}; expected one of {CORRELATIONS}")
    if mode == "matrix" and not has_matrix:
        raise ConfigError("correlation 'matrix' needs a parameter file with a correlation matrix")
    if mode != "matrix" or params is None:
        return Plan(tuple(resolved), start, end, seed, mode)
    keep = [i for i, s in enumerate(params.correlation_symbols) if s in set(symbols)]
    matrix = params.correlation[np.ix_(keep, keep)]  # type: ignore[index]
    return Plan(
        tuple(resolved),
        start,
        end,
        seed,
        mode,
        np.linalg.cholesky(matrix),
        tuple(params.correlation_symbols[i] for i in keep),
    )


def _previous_session(day: dt.date) -> dt.date:
    return last_sessions(day - dt.timedelta(days=1), 1, EXCHANGE)[0]


def simulate(
    symbols: Sequence[str] | None = None,
    *,
    start: dt.date,
    end: dt.date,
    preset: str | None = None,
    seed: int = 42,
    regime: str = "normal",
    correlation: str | None = None,
    params: ParamFile | None = None,
) -> pl.DataFrame:
    """The bars of ``symbols`` over the sessions in [start, end], symbol by symbol, by date.

    Columns: trade_date, symbol, open, high, low, close, adjusted_close, volume,
    dividend_amount, split_coefficient (prices rounded to four decimals, as landed).
    """
    p = plan(
        start=start,
        end=end,
        symbols=symbols,
        preset_name=preset,
        seed=seed,
        regime=regime,
        correlation=correlation,
        params=params,
    )
    return pl.concat(list(bar_chunks(p)))


def land_simulated(
    settings: Settings,
    *,
    start: dt.date,
    end: dt.date,
    ingest_date: dt.date,
    symbols: Sequence[str] | None = None,
    preset: str | None = None,
    seed: int | None = None,
    fmt: str = "json",
    regime: str = "normal",
    correlation: str | None = None,
    params_file: str | Path | None = None,
    output: str | Path | None = None,
) -> SimulationSummary:
    """Simulate [start, end] and land it for ``ingest_date`` (json, parquet) or export it (csv).

    ``json`` lands one vendor document per symbol, ``parquet`` StockRecord parts of a chunk of
    symbols each, both through the raw zone under source ``simulator``; ``csv`` writes the
    bars to ``output``. Every input is validated first: on a ``ConfigError`` nothing is written.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if (fmt == "csv") != (output is not None):
        raise ConfigError("--output is required with --format csv, and only with it")
    params = load_param_file(params_file) if params_file is not None else None
    p = plan(
        start=start,
        end=end,
        symbols=symbols,
        preset_name=preset,
        seed=settings.seed if seed is None else seed,
        regime=regime,
        correlation=correlation,
        params=params,
    )
    if output is not None and not Path(output).parent.is_dir():
        raise ConfigError(f"output directory {Path(output).parent} does not exist")
    summary = SimulationSummary(start, end, len(p.params), len(session_array(start, end)), 0)
    if fmt == "csv":
        _export_csv(p, Path(str(output)), summary)
    else:
        _land(RawZone(settings), p, ingest_date, fmt, summary)
    return summary


def _record(summary: SimulationSummary, bars: pl.DataFrame) -> None:
    summary.rows += bars.height
    ends = bars.group_by("symbol", maintain_order=True).agg(
        pl.col("close").first().alias("first"), pl.col("close").last().alias("last")
    )
    for symbol, first, last in ends.iter_rows():
        summary.closes[symbol] = (first, last)


def _land(
    zone: RawZone, p: Plan, ingest_date: dt.date, fmt: str, summary: SimulationSummary
) -> None:
    source_file = zone.uri(zone.batch_dir(SOURCE, ingest_date))
    with ThreadPoolExecutor(max_workers=1) as writer:
        pending: list[Future[list[str]]] = []
        for part, bars in enumerate(bar_chunks(p)):
            _record(summary, bars)
            if not bars.height:
                continue
            if fmt == "json":
                pending.append(writer.submit(_land_json, zone, ingest_date, p.symbols, bars))
            else:
                table = stock_records(bars, source_file, ingest_date).to_arrow()
                pending.append(writer.submit(_land_part, zone, ingest_date, table, part))
            if len(pending) > 1:
                summary.files += pending.pop(0).result()
        for done in pending:
            summary.files += done.result()


def _land_part(zone: RawZone, ingest_date: dt.date, table: pa.Table, part: int) -> list[str]:
    return [zone.land_parquet(SOURCE, ingest_date, table, part)]


def _land_json(
    zone: RawZone, ingest_date: dt.date, order: list[str], bars: pl.DataFrame
) -> list[str]:
    by_symbol = bars.partition_by("symbol", as_dict=True, include_key=True)
    landed = []
    for symbol in (s for s in order if (s,) in by_symbol):
        rows = by_symbol[(symbol,)]
        payload = encode_daily_adjusted(
            symbol, rows, last_refreshed=_last_refreshed(rows, ingest_date)
        )
        landed.append(zone.land(SOURCE, ingest_date, symbol, payload, rows=rows.height).path)
    return landed


def _last_refreshed(rows: pl.DataFrame, ingest_date: dt.date) -> dt.date:
    last = rows["trade_date"].max()
    return last if isinstance(last, dt.date) else ingest_date


def stock_records(bars: pl.DataFrame, source_file: str, ingest_date: dt.date) -> Frame[StockRecord]:
    """Bars in the raw ``StockRecord`` shape, as the vendor parser would produce them."""
    days = bars["trade_date"].to_physical()
    values = days.to_numpy()
    first, last = (int(values.min()), int(values.max())) if values.size else (0, -1)
    span = np.arange(first, last + 1)
    labels = pl.Series(span.astype("datetime64[D]")).cast(pl.String)
    return Frame(
        StockRecord,
        bars.with_columns(
            labels.gather(days - first).alias("timestamp"),
            pl.lit(source_file).alias("source_file"),
            pl.lit(ingest_date).alias("ingest_date"),
        ),
        origin=f"simulator batch {ingest_date}",
    )


def _export_csv(p: Plan, path: Path, summary: SimulationSummary) -> None:
    """Write the bars to ``path`` aside, then rename, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("wb") as handle:
            for i, bars in enumerate(bar_chunks(p)):
                _record(summary, bars)
                bars.write_csv(handle, include_header=i == 0)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    summary.files.append(str(path))


def bar_chunks(p: Plan, chunk: int = CHUNK_SYMBOLS) -> Iterator[pl.DataFrame]:
    """The bars of a plan, a chunk of symbols at a time (all at once under a full matrix)."""
    grid = _Grid(p.start, p.end)
    step = len(p.params) if p.matrix is not None else chunk
    market = _market(p, grid) if p.correlation == "market" else None
    for i in range(0, len(p.params), step):
        yield _chunk(p, grid, list(p.params[i : i + step]), market)


class _Grid:
    """The sessions a window needs: the window, the session before it and the anchor."""

    __slots__ = ("anchor", "dates", "first", "last", "weekday0", "weekdays")

    def __init__(self, start: dt.date, end: dt.date) -> None:
        lo, hi = min(_previous_session(start), ANCHOR), max(end, ANCHOR)
        self.dates: np.ndarray = session_array(lo, hi, EXCHANGE)
        weekdays = np.busday_count(EPOCH, self.dates)
        self.anchor = int(np.searchsorted(self.dates, np.datetime64(ANCHOR)))
        self.first = int(np.searchsorted(self.dates, np.datetime64(start)))
        self.last = int(np.searchsorted(self.dates, np.datetime64(end), side="right"))
        self.weekday0 = int(weekdays[0])
        self.weekdays: np.ndarray = weekdays - weekdays[0]


def _key(seed: int, name: str) -> int:
    digest = hashlib.blake2b(f"{seed}\x1f{name}".encode(), digest_size=16, person=b"fdp-sim")
    return int.from_bytes(digest.digest(), "little")


def _uniforms(seed: int, name: str, grid: _Grid) -> np.ndarray:
    """(8, sessions) uniforms in [0, 1), keyed by (seed, name, weekday index).

    Each weekday owns eight 64-bit outputs, i.e. two Philox counter blocks, so the counter
    for weekday ``k`` is ``2 k`` and no draw depends on the window's first day.
    """
    days = int(grid.weekdays[-1]) + 1
    gen = np.random.Generator(np.random.Philox(key=_key(seed, name), counter=2 * grid.weekday0))
    uniforms: np.ndarray = gen.random((days, DRAWS_PER_DAY))[grid.weekdays].T
    return uniforms


def _box_muller(u1: np.ndarray, u2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two independent standard normals per pair of uniforms in [0, 1) (exact, vectorised)."""
    r = np.sqrt(-2.0 * np.log1p(-u1))
    angle = 2.0 * np.pi * u2
    return r * np.cos(angle), r * np.sin(angle)


def _market(p: Plan, grid: _Grid) -> tuple[np.ndarray, np.ndarray]:
    u = _uniforms(p.seed, "\x00market", grid)
    return _box_muller(u[0], u[1])


def _from_anchor(x: np.ndarray, anchor: int) -> np.ndarray:
    """Sum of ``x`` over (anchor, t] for t >= anchor, minus the sum over (t, anchor] before.

    Summed outwards from the anchor so each value depends only on the dates between it and
    the anchor, never on where the window starts: continuation is bitwise exact.
    """
    out = np.zeros_like(x)
    np.cumsum(x[:, anchor + 1 :], axis=1, out=out[:, anchor + 1 :])
    if anchor > 0:
        back = np.cumsum(x[:, anchor:0:-1], axis=1)
        out[:, anchor - 1 :: -1] = -back
    return out


def _column(params: Sequence[SymbolParams], name: str) -> np.ndarray:
    return np.array([getattr(s, name) for s in params], dtype=np.float64)[:, None]


def _chunk(
    p: Plan,
    grid: _Grid,
    params: list[SymbolParams],
    market: tuple[np.ndarray, np.ndarray] | None,
) -> pl.DataFrame:
    n, names = len(params), [s.symbol for s in params]
    u = np.empty((DRAWS_PER_DAY, n, len(grid.dates)))
    for i, symbol in enumerate(names):
        u[:, i, :] = _uniforms(p.seed, symbol, grid)
    z_on, z_id = _box_muller(u[0], u[1])
    z_vol = np.sqrt(-2.0 * np.log1p(-u[2])) * np.cos(2.0 * np.pi * u[3])
    if market is not None:
        beta = _column(params, "beta")
        idio = np.sqrt(1.0 - beta**2)
        z_on = beta * market[0] + idio * z_on
        z_id = beta * market[1] + idio * z_id
    if p.matrix is not None:
        rows = [names.index(s) for s in p.matrix_symbols]
        z_on[rows] = p.matrix @ z_on[rows]
        z_id[rows] = p.matrix @ z_id[rows]

    mu, sigma = _column(params, "mu"), _column(params, "sigma")
    drift = (mu - 0.5 * sigma**2) * DT
    f = OVERNIGHT_SHARE
    overnight = f * drift + sigma * np.sqrt(f * DT) * z_on
    intraday = (1 - f) * drift + sigma * np.sqrt((1 - f) * DT) * z_id
    log_s0 = np.log(_column(params, "start_price"))
    log_tr = log_s0 + _from_anchor(overnight + intraday, grid.anchor)

    p_split = 1.0 - (1.0 - _column(params, "split_probability")) ** DT
    q = _column(params, "dividend_yield")
    is_div = _dividend_days(p.seed, names, grid.dates) & (q > 0)
    log_div = np.where(is_div, np.log1p(-q / 4.0), 0.0)
    level = log_tr + _from_anchor(log_div, grid.anchor)
    ratio = _split_ratios(
        u[6] < p_split,
        FORWARD_SPLITS[(u[7] * len(FORWARD_SPLITS)).astype(np.int64)],
        level,
        log_s0,
        grid.anchor,
    )
    log_ratio = np.log(ratio)
    log_event = log_div - log_ratio
    log_close = log_tr + _from_anchor(log_event, grid.anchor)
    log_open = log_close - intraday
    v = sigma**2 * (1 - f) * DT
    reach_hi = np.sqrt(intraday**2 - 2.0 * v * np.log1p(-u[4]))
    reach_lo = np.sqrt(intraday**2 - 2.0 * v * np.log1p(-u[5]))
    log_high = log_open + 0.5 * (intraday + reach_hi)
    log_low = log_open + 0.5 * (intraday - reach_lo)

    prev_close = np.exp(np.concatenate([log_close[:, :1], log_close[:, :-1]], axis=1))
    dividend = np.where(is_div, q / 4.0 * prev_close / ratio, 0.0)
    z_total = np.sqrt(f) * z_on + np.sqrt(1 - f) * z_id
    shocks = (1.0 + VOLUME_SHOCK * np.abs(z_total)) / (1.0 + VOLUME_SHOCK * np.sqrt(2 / np.pi))
    volume = (
        _column(params, "volume_base")
        * np.exp(VOLUME_SIGMA * z_vol - 0.5 * VOLUME_SIGMA**2)
        * shocks
        * np.exp(_from_anchor(log_ratio, grid.anchor))
    )

    w = slice(grid.first, grid.last)
    close_end = log_close[:, grid.last - 1 : grid.last]
    adjusted = np.exp(log_tr[:, w] - log_tr[:, grid.last - 1 : grid.last] + close_end)
    t = grid.last - grid.first

    def flat(a: np.ndarray) -> np.ndarray:
        return np.round(a, 4).reshape(-1)

    return pl.DataFrame(
        {
            "trade_date": np.tile(grid.dates[w], n),
            "symbol": pl.Series(names, dtype=pl.String).gather(np.repeat(np.arange(n), t)),
            "open": flat(np.exp(log_open[:, w])),
            "high": flat(np.exp(log_high[:, w])),
            "low": flat(np.exp(log_low[:, w])),
            "close": flat(np.exp(log_close[:, w])),
            "adjusted_close": flat(adjusted),
            "volume": np.rint(volume[:, w]).astype(np.int64).reshape(-1),
            "dividend_amount": flat(dividend[:, w]),
            "split_coefficient": ratio[:, w].reshape(-1),
        }
    )


def _split_ratios(
    candidate: np.ndarray, forward: np.ndarray, level: np.ndarray, log_s0: np.ndarray, anchor: int
) -> np.ndarray:
    """Split ratios: on a candidate day, split when the price before it is out of its band.

    Like a real issuer, a symbol splits forwards when its as-traded price has reached twice its
    start price and reverse-splits 1:2 when it has fallen to half; otherwise the candidate
    passes. The price before a split depends on the earlier splits, so days are walked outwards
    from the anchor (rare candidates only; everything else stays vectorised). Before the anchor
    the walk runs back in time, so there the split chosen is the one that brings the earlier
    prices back into the band. ``level`` is the log price without splits.
    """
    ratio = np.ones_like(level)
    high, low = log_s0[:, 0] + np.log(2.0), log_s0[:, 0] - np.log(2.0)
    for i in np.flatnonzero(candidate[:, 1:].any(axis=1)):
        days = np.flatnonzero(candidate[i])
        shift = 0.0  # log of the splits between the anchor and the day, as applied to prices
        for t in days[days > anchor]:
            before = level[i, t - 1] + shift
            if before >= high[i]:
                ratio[i, t] = forward[i, t]
            elif before <= low[i]:
                ratio[i, t] = REVERSE_SPLIT
            shift -= np.log(ratio[i, t])
        shift = 0.0
        for t in days[(days <= anchor) & (days > 0)][::-1]:
            after = level[i, t - 1] + shift  # the day before, in the basis after the split
            if after <= low[i]:
                ratio[i, t] = forward[i, t]
            elif after >= high[i]:
                ratio[i, t] = REVERSE_SPLIT
            shift += np.log(ratio[i, t])
    return ratio


def _dividend_days(seed: int, names: Sequence[str], dates: np.ndarray) -> np.ndarray:
    """One ex-date per quarter per symbol: the first session on or after a target day.

    The target is ``offset`` days into the quarter, with ``offset`` in [0, 60) keyed by
    (seed, symbol, quarter), so ex-dates are a pure function of the calendar.
    """
    months = dates.astype("datetime64[M]").astype(np.int64)
    quarter = months // 3
    quarter_start = (quarter * 3).astype("datetime64[M]").astype("datetime64[D]")
    base = np.array([_key(seed, f"div:{s}") % 60 for s in names], dtype=np.int64)[:, None]
    offset = (base + 23 * quarter[None, :]) % 60
    target = quarter_start[None, :] + offset.astype("timedelta64[D]")
    prev = np.concatenate([dates[:1] - np.timedelta64(1, "D"), dates[:-1]])
    days: np.ndarray = (dates[None, :] >= target) & (prev[None, :] < target)
    return days
