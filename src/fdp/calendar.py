"""Exchange sessions (NYSE by default), from a maintained calendar library.

Every stage that reasons about "which days trade" (the simulator, the quality gate's
completeness rule, backfill, the DAG's schedule) asks here, so they agree on holidays.
"""

from __future__ import annotations

import datetime as dt
from functools import cache

import numpy as np

from fdp.errors import ConfigError

EXCHANGE = "XNYS"
_CALENDAR_START = dt.date(1990, 1, 2)


@cache
def _calendar(exchange: str) -> object:
    import exchange_calendars as xcals

    return xcals.get_calendar(exchange, start=_CALENDAR_START.isoformat())


@cache
def _all_sessions(exchange: str) -> np.ndarray:
    sessions = _calendar(exchange).sessions  # type: ignore[attr-defined]
    return np.asarray(sessions.values.astype("datetime64[D]"))


def coverage(exchange: str = EXCHANGE) -> tuple[dt.date, dt.date]:
    """The first and last day the exchange calendar can judge."""
    return _CALENDAR_START, _all_sessions(exchange)[-1].item()


def sessions(start: dt.date, end: dt.date, exchange: str = EXCHANGE) -> list[dt.date]:
    """The exchange sessions in ``[start, end]``, oldest first."""
    return [d.item() for d in session_array(start, end, exchange)]


def session_array(start: dt.date, end: dt.date, exchange: str = EXCHANGE) -> np.ndarray:
    """``sessions`` as a ``datetime64[D]`` array (no Python objects, for bulk work)."""
    if start > end:
        raise ConfigError(f"start {start} is after end {end}")
    all_ = _all_sessions(exchange)
    if start < _CALENDAR_START or end > all_[-1].item():
        raise ConfigError(
            f"{exchange} calendar covers {_CALENDAR_START} to {all_[-1].item()}; "
            f"asked for {start} to {end}"
        )
    lo, hi = np.searchsorted(all_, [np.datetime64(start), np.datetime64(end)], side="left")
    if hi < len(all_) and all_[hi] == np.datetime64(end):
        hi += 1
    return all_[lo:hi]


def is_session(day: dt.date, exchange: str = EXCHANGE) -> bool:
    return bool(len(session_array(day, day, exchange)))


def last_sessions(end: dt.date, count: int, exchange: str = EXCHANGE) -> list[dt.date]:
    """The ``count`` sessions ending on or before ``end``."""
    all_ = _all_sessions(exchange)
    hi = int(np.searchsorted(all_, np.datetime64(end), side="right"))
    if count > hi:
        raise ConfigError(f"fewer than {count} {exchange} sessions before {end}")
    return [d.item() for d in all_[hi - count : hi]]


def next_sessions(start: dt.date, count: int, exchange: str = EXCHANGE) -> list[dt.date]:
    """The ``count`` sessions starting on or after ``start``."""
    all_ = _all_sessions(exchange)
    lo = int(np.searchsorted(all_, np.datetime64(start), side="left"))
    if lo + count > len(all_):
        raise ConfigError(f"fewer than {count} {exchange} sessions from {start} in the calendar")
    return [d.item() for d in all_[lo : lo + count]]
