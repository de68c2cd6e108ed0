"""Session arithmetic and the timetable built on it, against dates read off NYSE's calendar."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from fdp.errors import ConfigError
from fdp.orchestration.schedule import (
    first_session_from,
    last_ready_session,
    next_session_after,
    session_date,
    session_or_none,
    session_window,
)

NY = ZoneInfo("America/New_York")
UTC = dt.UTC
# NYSE sessions from 2024-12-24, written from the exchange's published holidays (Christmas
# 2024-12-25, New Year 2025-01-01, the national day of mourning 2025-01-09) and weekends.
AFTER_CHRISTMAS_EVE = [
    dt.date(2024, 12, 26),
    dt.date(2024, 12, 27),
    dt.date(2024, 12, 30),
    dt.date(2024, 12, 31),
    dt.date(2025, 1, 2),
    dt.date(2025, 1, 3),
    dt.date(2025, 1, 6),
    dt.date(2025, 1, 7),
    dt.date(2025, 1, 8),
    dt.date(2025, 1, 10),
]


def test_session_date_is_the_exchange_local_day() -> None:
    # 02:00 UTC on the 24th is still the 23rd in New York.
    assert session_date(dt.datetime(2024, 12, 24, 2, 0, tzinfo=UTC)) == dt.date(2024, 12, 23)
    assert session_date(dt.datetime(2024, 12, 24, 5, 0, tzinfo=UTC)) == dt.date(2024, 12, 24)
    with pytest.raises(ConfigError, match="no time zone"):
        session_date(dt.datetime(2024, 12, 24, 5, 0))  # noqa: DTZ001 (the refused case)


def test_window_is_local_midnight_to_ready_time_across_dst() -> None:
    winter = session_window(dt.date(2024, 12, 24))
    assert winter == (
        dt.datetime(2024, 12, 24, 5, 0, tzinfo=UTC),
        dt.datetime(2024, 12, 24, 23, 0, tzinfo=UTC),
    )
    summer = session_window(dt.date(2024, 7, 1))
    assert summer[0] == dt.datetime(2024, 7, 1, 4, 0, tzinfo=UTC)


def test_session_navigation_skips_weekends_and_holidays() -> None:
    assert next_session_after(dt.date(2024, 12, 24)) == dt.date(2024, 12, 26)
    assert next_session_after(dt.date(2024, 12, 27)) == dt.date(2024, 12, 30)
    assert session_or_none(dt.datetime(2024, 12, 25, 12, tzinfo=UTC)) is None
    assert session_or_none(dt.datetime(2024, 12, 28, 12, tzinfo=UTC)) is None
    assert session_or_none(dt.datetime(2024, 12, 26, 12, tzinfo=UTC)) == dt.date(2024, 12, 26)
    # A start exactly at a session's midnight takes that session; a minute later the next.
    midnight = dt.datetime(2024, 12, 24, tzinfo=NY)
    assert first_session_from(midnight) == dt.date(2024, 12, 24)
    assert first_session_from(midnight + dt.timedelta(minutes=1)) == dt.date(2024, 12, 26)


def test_last_ready_session_waits_for_the_ready_time() -> None:
    before = dt.datetime(2024, 12, 24, 17, 59, tzinfo=NY)
    after = dt.datetime(2024, 12, 24, 18, 0, tzinfo=NY)
    assert last_ready_session(before) == dt.date(2024, 12, 23)
    assert last_ready_session(after) == dt.date(2024, 12, 24)
    assert last_ready_session(dt.datetime(2024, 12, 25, 12, tzinfo=NY)) == dt.date(2024, 12, 24)


@pytest.mark.airflow
def test_timetable_runs_only_on_sessions(airflow_home: Path) -> None:
    from airflow.timetables.base import TimeRestriction

    from fdp.orchestration.timetable import ExchangeSessionTimetable

    timetable = ExchangeSessionTimetable()
    everything = TimeRestriction(earliest=None, latest=None, catchup=True)
    last = timetable.interval(dt.date(2024, 12, 24))
    days = []
    for _ in AFTER_CHRISTMAS_EVE:
        info = timetable.next_dagrun_info(last_automated_data_interval=last, restriction=everything)
        assert info is not None
        assert info.run_after == info.data_interval.end
        days.append(session_date(info.data_interval.start))
        last = info.data_interval
    assert days == AFTER_CHRISTMAS_EVE


@pytest.mark.airflow
def test_timetable_first_run_latest_bound_and_manual_runs(airflow_home: Path) -> None:
    from airflow.timetables.base import TimeRestriction

    from fdp.orchestration.timetable import ExchangeSessionTimetable

    timetable = ExchangeSessionTimetable()
    christmas = dt.datetime(2024, 12, 25, tzinfo=UTC)
    first = timetable.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(earliest=christmas, latest=None, catchup=True),
    )
    assert first is not None
    assert first.data_interval.start == dt.datetime(2024, 12, 26, 5, 0, tzinfo=UTC)
    assert first.run_after == dt.datetime(2024, 12, 26, 23, 0, tzinfo=UTC)
    bounded = TimeRestriction(earliest=christmas, latest=christmas, catchup=True)
    assert (
        timetable.next_dagrun_info(last_automated_data_interval=None, restriction=bounded) is None
    )
    no_start = TimeRestriction(earliest=None, latest=None, catchup=True)
    assert (
        timetable.next_dagrun_info(last_automated_data_interval=None, restriction=no_start) is None
    )
    # Without catchup the first run is the newest session already complete, not 2024's.
    recent = timetable.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(earliest=christmas, latest=None, catchup=False),
    )
    assert recent is not None
    assert recent.data_interval.end <= dt.datetime.now(UTC)
    assert recent.data_interval.start > dt.datetime.now(UTC) - dt.timedelta(days=7)
    # A manual run on a Saturday is for Friday's session.
    saturday = dt.datetime(2024, 12, 28, 15, tzinfo=UTC)
    manual = timetable.infer_manual_data_interval(run_after=saturday)
    assert session_date(manual.start) == dt.date(2024, 12, 27)
    again = ExchangeSessionTimetable.deserialize(timetable.serialize())
    assert again.serialize() == timetable.serialize()
