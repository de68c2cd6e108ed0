"""NYSE sessions: checked against the exchange's published 2024 holiday list."""

from __future__ import annotations

import datetime as dt

import pytest

from fdp.calendar import is_session, last_sessions, next_sessions, session_array, sessions
from fdp.errors import ConfigError
from nyse_reference import HOLIDAYS_2024


def test_2024_sessions_are_the_weekdays_minus_the_holidays() -> None:
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(366)]
    expected = [d for d in days if d.weekday() < 5 and d not in HOLIDAYS_2024]
    assert sessions(dt.date(2024, 1, 1), dt.date(2024, 12, 31)) == expected
    assert len(expected) == 252
    assert session_array(dt.date(2024, 1, 1), dt.date(2024, 12, 31)).dtype.str == "<M8[D]"


def test_single_days_and_counts() -> None:
    assert is_session(dt.date(2024, 7, 3))
    assert not is_session(dt.date(2024, 7, 4))
    assert not is_session(dt.date(2024, 7, 6))
    assert last_sessions(dt.date(2024, 7, 7), 2) == [dt.date(2024, 7, 3), dt.date(2024, 7, 5)]
    assert next_sessions(dt.date(2024, 7, 4), 2) == [dt.date(2024, 7, 5), dt.date(2024, 7, 8)]
    assert sessions(dt.date(2024, 7, 4), dt.date(2024, 7, 4)) == []


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: sessions(dt.date(2024, 2, 1), dt.date(2024, 1, 1)), "after end"),
        (lambda: sessions(dt.date(1980, 1, 2), dt.date(1980, 2, 1)), "1980-01-02"),
        (lambda: sessions(dt.date(2024, 1, 2), dt.date(2090, 1, 1)), "2090-01-01"),
        (lambda: last_sessions(dt.date(1990, 1, 5), 10), "fewer than 10"),
        (lambda: next_sessions(dt.date(2027, 1, 4), 5000), "fewer than 5000"),
    ],
)
def test_out_of_range_requests_are_config_errors(call: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        call()  # type: ignore[operator]
