"""``ExchangeSessionTimetable``: one DAG run per exchange session, none on weekends or holidays.

Written against ``airflow.timetables.base.Timetable``, whose two methods are the same on
Airflow 2.10 (MWAA) and 3.x. The scheduler deserializes it by class path, so it must be
registered through a plugin (``fdp.orchestration.plugin``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pendulum
from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction, Timetable

from fdp.calendar import EXCHANGE
from fdp.orchestration.schedule import (
    EXCHANGE_TZ,
    READY_AT,
    first_session_from,
    last_ready_session,
    next_session_after,
    session_date,
    session_window,
)


class ExchangeSessionTimetable(Timetable):
    """Session ``D``'s run starts at ``D`` ``ready_at`` exchange time; logical date: ``D`` 00:00."""

    def __init__(self, exchange: str = EXCHANGE, ready_at: str = READY_AT.isoformat("minutes")):
        self.exchange = exchange
        self.ready_at = dt.time.fromisoformat(ready_at)
        self.description = f"{exchange} sessions, after {ready_at} {EXCHANGE_TZ.key}"

    @property
    def summary(self) -> str:
        return f"{self.exchange} sessions"

    def serialize(self) -> dict[str, Any]:
        return {"exchange": self.exchange, "ready_at": self.ready_at.isoformat("minutes")}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> ExchangeSessionTimetable:
        return cls(exchange=data["exchange"], ready_at=data["ready_at"])

    def interval(self, day: dt.date) -> DataInterval:
        """The data interval of session ``day``'s run."""
        start, end = session_window(day, self.ready_at)
        return DataInterval(start=pendulum.instance(start), end=pendulum.instance(end))

    def infer_manual_data_interval(self, *, run_after: dt.datetime) -> DataInterval:
        """A manual run is for the session of its local day, else the one before it."""
        day = session_date(run_after)
        latest = last_ready_session(
            dt.datetime.combine(day, dt.time(23, 59), EXCHANGE_TZ), self.ready_at, self.exchange
        )
        return self.interval(latest if latest is not None else day)

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
    ) -> DagRunInfo | None:
        if last_automated_data_interval is not None:
            day = next_session_after(
                session_date(last_automated_data_interval.start), self.exchange
            )
        elif restriction.earliest is None:
            return None
        else:
            day = first_session_from(restriction.earliest, self.exchange)
        if day is not None and not restriction.catchup:
            newest = last_ready_session(dt.datetime.now(dt.UTC), self.ready_at, self.exchange)
            if newest is not None and newest > day:
                day = newest
        if day is None:
            return None
        interval = self.interval(day)
        if restriction.latest is not None and interval.start > restriction.latest:
            return None
        return DagRunInfo.interval(start=interval.start, end=interval.end)
