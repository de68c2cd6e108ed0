"""The Spark transform as an AWS Glue job: start one run with boto3 and wait for its end.

The Glue job runs ``fdp transform`` for the arguments it is given; this module only starts
and watches it. The endpoint comes from boto3's own settings (``AWS_ENDPOINT_URL_GLUE``).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from fdp.errors import MissingDependencyError, TerminalError, TransientError

SUCCEEDED = "SUCCEEDED"
FAILED_FOR_GOOD = frozenset({"FAILED", "STOPPED"})
FAILED_MAYBE_TRANSIENT = frozenset({"ERROR", "TIMEOUT", "EXPIRED"})


def run_glue_transform(
    job_name: str,
    run_date: dt.date,
    source: str,
    *,
    region: str | None = None,
    poll_s: float = 15.0,
    timeout_s: float = 3 * 3600.0,
    client: Any = None,
) -> dict[str, Any]:
    """Run Glue job ``job_name`` for ``run_date`` and return its final run description.

    A run that failed in its code is terminal; capacity or timeout failures are transient,
    and a retry starts a new run (the transform is idempotent, so that is safe).
    """
    if client is None:
        try:
            import boto3
        except ImportError:
            raise MissingDependencyError("boto3", "aws") from None
        client = boto3.client("glue", region_name=region)
    # the job's own arguments (fdp.engines.spark_job); paths come from its DefaultArguments
    arguments = {"--date": run_date.isoformat(), "--source": source}
    try:
        run_id = client.start_job_run(JobName=job_name, Arguments=arguments)["JobRunId"]
    except client.exceptions.ConcurrentRunsExceededException as exc:
        raise TransientError(f"Glue job {job_name} {run_date}: {exc}") from None
    except client.exceptions.EntityNotFoundException:
        raise TerminalError(f"Glue job {job_name!r} does not exist: deploy it first") from None
    deadline = time.monotonic() + timeout_s
    while True:
        run = client.get_job_run(JobName=job_name, RunId=run_id)["JobRun"]
        state = run["JobRunState"]
        if state == SUCCEEDED:
            return dict(run)
        what = f"Glue job {job_name} run {run_id} for {run_date} ended {state}"
        if state in FAILED_FOR_GOOD:
            raise TerminalError(f"{what}: {run.get('ErrorMessage', 'no message')}")
        if state in FAILED_MAYBE_TRANSIENT:
            raise TransientError(f"{what}: {run.get('ErrorMessage', 'no message')}")
        if time.monotonic() > deadline:
            client.batch_stop_job_run(JobName=job_name, JobRunIds=[run_id])
            raise TransientError(
                f"Glue job {job_name} run {run_id} still {state} after {timeout_s} s"
            )
        time.sleep(poll_s)
