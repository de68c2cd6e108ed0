"""The bodies of the DAG's tasks: parameters and logical date in, ``fdp.pipeline`` call out.

Each task derives its session date from the run's logical date alone, so clearing any task
or backfilling any range re-does exactly that session's work and nothing else.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from fdp import pipeline
from fdp.config import Settings
from fdp.orchestration.notify import post_slack, success_text
from fdp.orchestration.policy import run_with_policy
from fdp.orchestration.schedule import session_or_none
from fdp.pipeline import STAGES, Stage, TaskResult
from fdp.sources import SOURCES

ENGINES = ("polars", "spark", "glue")

log = logging.getLogger(__name__)


def dag_params() -> dict[str, Any]:
    """The DAG's run parameters (validated by Airflow when a run is triggered)."""
    try:
        from airflow.sdk import Param
    except ImportError:  # Airflow 2.10
        from airflow.models.param import Param  # type: ignore[no-redef]
    return {
        "source": Param("alpha_vantage", enum=list(SOURCES), description="market data source"),
        "engine": Param("", enum=["", *ENGINES], description="transform engine; empty: FDP_ENGINE"),
        "warehouse": Param(
            "",
            type="string",
            description="warehouse URL; empty: FDP_WAREHOUSE_URL or FDP_WAREHOUSE_SECRET_ARN",
        ),
        "symbols": Param("", type="string", description="comma-separated; empty: FDP_SYMBOLS"),
        "glue_job_name": Param(
            "", type="string", description="engine=glue job; empty: FDP_GLUE_JOB_NAME"
        ),
    }


def session_for(context: Mapping[str, Any]) -> dt.date:
    """The run's session date; a run whose local day does not trade is skipped."""
    moment = context.get("logical_date") or context["dag_run"].run_after
    day = session_or_none(moment)
    if day is None:
        try:
            from airflow.sdk.exceptions import AirflowSkipException
        except ImportError:  # Airflow 2.10
            from airflow.exceptions import AirflowSkipException  # type: ignore[no-redef]
        raise AirflowSkipException(
            f"{moment.isoformat()} is not an exchange session: nothing to do"
        )
    return day


def settings_for(params: Mapping[str, Any]) -> Settings:
    """Settings from the environment, with the run's warehouse and engine when given."""
    overrides: dict[str, Any] = {}
    if params.get("warehouse"):
        overrides["warehouse_url"] = params["warehouse"]
    if params.get("engine") in ("polars", "spark"):
        overrides["engine"] = params["engine"]
    return Settings(**overrides)


def _stage(stage: Stage, settings: Settings, day: dt.date, params: Mapping[str, Any]) -> TaskResult:
    source = params.get("source", "alpha_vantage")
    if stage == "ingest":
        symbols = [s.strip() for s in str(params.get("symbols") or "").split(",") if s.strip()]
        return pipeline.ingest(settings, day, source=source, symbols=symbols or None)
    if stage == "transform" and params.get("engine") == "glue":
        job = str(params.get("glue_job_name") or settings.glue_job_name)
        return pipeline.transform_on_glue(settings, day, source=source, job_name=job)
    if stage in ("validate", "transform"):
        return pipeline.TASKS[stage](settings, day, source=source)
    return pipeline.TASKS[stage](settings, day)


def run_stage(stage: str, context: Mapping[str, Any]) -> dict[str, Any]:
    """Run one pipeline stage for the run's session; its ``TaskResult`` becomes the XCom."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}")
    day = session_for(context)
    params = context["params"]
    result = run_with_policy(lambda: _stage(stage, settings_for(params), day, params))
    log.info("%s %s: %s", stage, day, result.to_dict())
    return result.to_dict()


def notify_success(context: Mapping[str, Any]) -> str:
    """Summarise the run's stage results (from XCom); post to Slack when configured."""
    ti = context["ti"]
    results = [ti.xcom_pull(task_ids=stage) for stage in STAGES]
    text = success_text(ti.dag_id, session_for(context).isoformat(), [r for r in results if r])
    log.info("%s", text)
    post_slack(text)
    return text
