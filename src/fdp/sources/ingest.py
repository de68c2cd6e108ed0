"""``fdp ingest``'s work: land one date of a source for some symbols, one outcome each.

The CLI, the pipeline and the DAG call ``ingest`` so every caller gets the same per-symbol
outcomes and decides from them; a failed symbol never makes the run look successful.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from fdp.config import Settings
from fdp.errors import ConfigError, FdpError, TransientError
from fdp.records import TICKER_RE
from fdp.sources.landing import RawZone

Source = Literal["alpha_vantage", "simulator"]


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """What happened to one symbol of an ingest run."""

    symbol: str
    ok: bool
    rows: int = 0
    path: str | None = None
    error: str | None = None
    transient: bool = False


def parse_symbols(text: str) -> list[str]:
    """``"aapl, MSFT"`` -> ``["AAPL", "MSFT"]``, duplicates dropped; a bad ticker is a
    ``ConfigError`` naming it."""
    given = [s.strip() for s in text.split(",") if s.strip()]
    if not given:
        raise ConfigError("no symbols given: pass --symbols AAPL,MSFT,...")
    bad = [s for s in given if not TICKER_RE.match(s.upper())]
    if bad:
        raise ConfigError(f"invalid ticker(s) {bad}: expected {TICKER_RE.pattern}")
    return list(dict.fromkeys(s.upper() for s in given))


def ingest(
    settings: Settings,
    source: Source,
    symbols: Sequence[str],
    ingest_date: dt.date,
    *,
    function: Literal["daily", "daily_adjusted"] = "daily",
    outputsize: Literal["compact", "full"] = "compact",
    on_outcome: Callable[[IngestOutcome], None] | None = None,
) -> list[IngestOutcome]:
    """Land ``symbols`` of ``source`` for ``ingest_date``; one outcome per symbol, in order."""
    if source == "alpha_vantage":
        from fdp.sources import alpha_vantage

        return alpha_vantage.ingest(
            settings,
            symbols,
            ingest_date,
            function=function,
            outputsize=outputsize,
            on_outcome=on_outcome,
        )
    if source == "simulator":
        outcomes = _simulated(settings, symbols, ingest_date)
        for outcome in outcomes:
            if on_outcome is not None:
                on_outcome(outcome)
        return outcomes
    raise ConfigError(f"unknown source {source!r}; expected alpha_vantage or simulator")


def _simulated(
    settings: Settings, symbols: Sequence[str], ingest_date: dt.date
) -> list[IngestOutcome]:
    """Run the simulator for one day, then report what the raw zone holds per symbol."""
    from fdp.sources.simulator import land_simulated

    try:
        land_simulated(
            settings, start=ingest_date, end=ingest_date, ingest_date=ingest_date, symbols=symbols
        )
    except ConfigError:
        raise
    except FdpError as exc:
        transient = isinstance(exc, TransientError)
        return [IngestOutcome(s, False, error=str(exc), transient=transient) for s in symbols]
    zone = RawZone(settings)
    counts = zone.read_batch("simulator", ingest_date).df["symbol"].value_counts()
    rows = dict(zip(counts["symbol"].to_list(), counts["count"].to_list(), strict=True))
    return [
        IngestOutcome(s, True, int(rows.get(s, 0)), _landed_at(zone, ingest_date, s))
        for s in symbols
    ]


def _landed_at(zone: RawZone, ingest_date: dt.date, symbol: str) -> str:
    """The symbol's own object when it has one (json), else the batch (parquet parts)."""
    path = zone.object_path("simulator", ingest_date, symbol)
    return zone.uri(path if zone.fs.exists(path) else zone.batch_dir("simulator", ingest_date))
