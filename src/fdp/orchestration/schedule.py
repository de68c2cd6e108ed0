"""Which exchange session a run is for, and when it may start (no Airflow needed).

A session ``D``'s run covers the wall-clock day ``D`` in the exchange's time zone, from
midnight until ``ready_at`` (the time the day's bars are final). Its logical date is that
midnight, so the session date is recovered from any logical date by converting it to the
exchange's time zone; the timetable and the tasks both ask here, so they agree.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from fdp.calendar import EXCHANGE, is_session, last_sessions, next_sessions
from fdp.errors import ConfigError

EXCHANGE_TZ = ZoneInfo("America/New_York")
READY_AT = dt.time(18, 0)


def session_date(logical_date: dt.datetime) -> dt.date:
    """The exchange-local date a logical date stands for; a naive datetime is refused."""
    if logical_date.tzinfo is None:
        raise ConfigError(f"logical date {logical_date} has no time zone")
    return logical_date.astimezone(EXCHANGE_TZ).date()


def session_window(day: dt.date, ready_at: dt.time = READY_AT) -> tuple[dt.datetime, dt.datetime]:
    """``(start, end)`` in UTC of session ``day``'s run: local midnight to ``ready_at``."""
    start = dt.datetime.combine(day, dt.time(0, 0), EXCHANGE_TZ)
    end = dt.datetime.combine(day, ready_at, EXCHANGE_TZ)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def first_session_from(moment: dt.datetime, exchange: str = EXCHANGE) -> dt.date | None:
    """The first session whose window starts at or after ``moment`` (None past the calendar)."""
    day = session_date(moment)
    if session_window(day)[0] < moment:
        day += dt.timedelta(days=1)
    try:
        return next_sessions(day, 1, exchange)[0]
    except ConfigError:
        return None


def next_session_after(day: dt.date, exchange: str = EXCHANGE) -> dt.date | None:
    """The session after ``day`` (None past the end of the calendar)."""
    try:
        return next_sessions(day + dt.timedelta(days=1), 1, exchange)[0]
    except ConfigError:
        return None


def last_ready_session(
    moment: dt.datetime, ready_at: dt.time = READY_AT, exchange: str = EXCHANGE
) -> dt.date | None:
    """The latest session whose window has ended by ``moment``: the newest one ready to run."""
    day = session_date(moment)
    try:
        candidate = last_sessions(day, 1, exchange)[0]
        if session_window(candidate, ready_at)[1] > moment:
            candidate = last_sessions(candidate - dt.timedelta(days=1), 1, exchange)[0]
    except ConfigError:
        return None
    return candidate


def session_or_none(logical_date: dt.datetime, exchange: str = EXCHANGE) -> dt.date | None:
    """The session date of ``logical_date``, or None when that local day does not trade."""
    day = session_date(logical_date)
    try:
        return day if is_session(day, exchange) else None
    except ConfigError:
        return None
