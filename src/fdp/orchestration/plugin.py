"""The Airflow plugin that registers fdp's timetable, so the scheduler can deserialize it.

MWAA and a plain Airflow load it from the plugins folder through a one-line shim
(``bundle.PLUGIN_SHIM``) that imports this class from the installed fdp wheel.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from fdp.orchestration.timetable import ExchangeSessionTimetable


class FdpPlugin(AirflowPlugin):
    name = "fdp"
    timetables = [ExchangeSessionTimetable]  # noqa: RUF012 (Airflow reads a class attribute)
