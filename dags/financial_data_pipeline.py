"""fdp's daily pipeline, one run per exchange session: ingest -> validate -> transform -> load
-> reconcile -> notify.

Thin on purpose: every task calls ``fdp.pipeline`` through ``fdp.orchestration.steps``, keyed
by the session date of the run's logical date, so clearing a task or backfilling a range is
safe. Runs on Airflow 3.x and on the 2.10 line MWAA offers.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

try:
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2.10
    from airflow.decorators import dag, task

from fdp.orchestration import steps
from fdp.orchestration.notify import on_failure
from fdp.orchestration.policy import API_POOL, RETRY_DEFAULTS
from fdp.orchestration.timetable import ExchangeSessionTimetable


@dag(
    dag_id="financial_data_pipeline",
    schedule=ExchangeSessionTimetable(),
    start_date=dt.datetime(2024, 1, 2, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=4,
    default_args={**RETRY_DEFAULTS, "on_failure_callback": on_failure},
    params=steps.dag_params(),
    tags=["fdp"],
    doc_md=__doc__,
)
def financial_data_pipeline() -> None:
    @task(pool=API_POOL)
    def ingest(**context: Any) -> dict[str, Any]:
        return steps.run_stage("ingest", context)

    @task
    def validate(**context: Any) -> dict[str, Any]:
        return steps.run_stage("validate", context)

    @task
    def transform(**context: Any) -> dict[str, Any]:
        return steps.run_stage("transform", context)

    @task
    def load(**context: Any) -> dict[str, Any]:
        return steps.run_stage("load", context)

    @task
    def reconcile(**context: Any) -> dict[str, Any]:
        return steps.run_stage("reconcile", context)

    @task(retries=0)
    def notify(**context: Any) -> str:
        return steps.notify_success(context)

    ingest() >> validate() >> transform() >> load() >> reconcile() >> notify()


financial_data_pipeline()
