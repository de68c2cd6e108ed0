"""The DAG as a real Airflow parses, serializes and schedules it."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from typing import Any

import pytest

from fdp.orchestration.schedule import session_date

pytestmark = pytest.mark.airflow

STAGES = ["ingest", "validate", "transform", "load", "reconcile", "notify"]


def test_dag_imports_with_the_expected_graph(dag: Any) -> None:
    assert sorted(t.task_id for t in dag.tasks) == sorted(STAGES)
    for upstream, task_id in itertools.pairwise(STAGES):
        assert dag.get_task(task_id).upstream_task_ids == {upstream}
    assert dag.get_task("ingest").upstream_task_ids == set()
    assert dag.params["source"] in ("simulator", "alpha_vantage")
    assert set(dag.params.keys()) >= {"source", "engine", "warehouse"}


def test_transient_errors_retry_with_backoff_and_the_api_is_pooled(dag: Any) -> None:
    for task_id in STAGES[:-1]:
        task = dag.get_task(task_id)
        assert task.retries >= 3, task_id
        assert task.retry_exponential_backoff, task_id
        assert task.max_retry_delay == dt.timedelta(minutes=15), task_id
        assert task.on_failure_callback, task_id
    assert dag.get_task("ingest").pool == "alpha_vantage_api"
    assert dag.get_task("validate").pool != "alpha_vantage_api"
    assert dag.get_task("notify").retries == 0


def test_serialized_dag_keeps_the_session_timetable(dag: Any) -> None:
    """The scheduler's copy (deserialized through the plugin) schedules sessions only."""
    try:
        from airflow.serialization.serialized_objects import DagSerialization as Serializer
    except ImportError:  # Airflow 2.10
        from airflow.serialization.serialized_objects import SerializedDAG as Serializer
    from airflow.timetables.base import TimeRestriction

    scheduler_dag = Serializer.from_dict(Serializer.to_dict(dag))
    timetable = scheduler_dag.timetable
    assert type(timetable).__name__ == "ExchangeSessionTimetable"
    everything = TimeRestriction(earliest=None, latest=None, catchup=True)
    last = timetable.interval(dt.date(2024, 12, 24))
    days = []
    for _ in range(3):
        info = timetable.next_dagrun_info(last_automated_data_interval=last, restriction=everything)
        days.append(session_date(info.data_interval.start))
        last = info.data_interval
    assert days == [dt.date(2024, 12, 26), dt.date(2024, 12, 27), dt.date(2024, 12, 30)]


def test_airflow_lists_the_timetable_plugin(airflow_home: Path) -> None:
    from airflow import plugins_manager

    if hasattr(plugins_manager, "get_timetables_plugins"):
        registered = plugins_manager.get_timetables_plugins()
    else:  # Airflow 2.10
        plugins_manager.initialize_timetables_plugins()
        registered = plugins_manager.timetable_classes
    assert "fdp.orchestration.timetable.ExchangeSessionTimetable" in registered


def test_the_default_run_params_leave_engine_and_glue_job_to_the_settings(
    dag: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compose stack's FDP_ENGINE=spark and the production stack's FDP_GLUE_JOB_NAME
    reach a scheduled run (its params are the defaults); a triggered run may still choose."""
    from fdp.orchestration.steps import settings_for

    monkeypatch.setenv("FDP_ENGINE", "spark")
    monkeypatch.setenv("FDP_SPARK_MASTER", "spark://spark-master:7077")
    monkeypatch.setenv("FDP_GLUE_JOB_NAME", "fdp-dev-transform")
    defaults = {name: dag.params[name] for name in dag.params}
    settings = settings_for(defaults)
    assert (settings.engine, settings.spark_master) == ("spark", "spark://spark-master:7077")
    assert not defaults["glue_job_name"]
    assert settings.glue_job_name == "fdp-dev-transform"
    assert settings_for(defaults | {"engine": "polars"}).engine == "polars"
