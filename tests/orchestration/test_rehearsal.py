"""The production rehearsal: fdp run here as deployed on MWAA, by the real Airflow services.

What is deployed is what ``fdp bundle`` builds: fdp is installed in a fresh virtual environment
from the wheel inside ``plugins.zip`` with the bundle's ``requirements.txt`` (Airflow itself
comes from the environment, as MWAA's image provides it), the plugin shim registers the
timetable, the pool comes from ``pools.json`` and fdp's settings are the ``AIRFLOW__FDP__*``
options that the bundle's ``startup.sh`` turns into ``FDP_*`` variables. Airflow's API server,
scheduler and DAG processor run as separate processes with the LocalExecutor on a fresh
PostgreSQL metadata database; the lake is on moto's S3 server (a LOCAL STAND-IN for AWS), the
warehouse on PostgreSQL and the vendor is a loopback HTTP server that answers like Alpha
Vantage.

Only the waits are shortened: the services' poll intervals, and a cluster policy
(``airflow_local_settings.py``, as an operator would install one) that cuts the retry delay to
a second while keeping the DAG's number of retries.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
import subprocess
import sys
import sysconfig
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from fdp.orchestration.bundle import MWAA_PLUGINS_DIR, build_bundle
from fdp.orchestration.policy import RETRY_DEFAULTS
from vendor_server import Answer, VendorServer, vendor_doc

pytestmark = [pytest.mark.airflow, pytest.mark.postgres, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "financial_data_pipeline"
SESSIONS = (dt.date(2026, 11, 18), dt.date(2026, 11, 19), dt.date(2026, 11, 20))
BROKEN = dt.date(2026, 11, 23)
SYMBOLS = ("AAPL", "MSFT")
BUCKET = "fdp-rehearsal"
KEY = "ReHeArSaLkEy42"
TASKS = ("ingest", "validate", "transform", "load", "reconcile", "notify")
DEADLINE_S = 240.0
HTTP_RETRIES = 1

CLUSTER_POLICY = '''"""The rehearsal's cluster policy: retries wait a second, as many as before."""

import datetime as dt


def task_policy(task):
    task.retry_delay = dt.timedelta(seconds=1)
    task.max_retry_delay = dt.timedelta(seconds=1)
'''

FAST_AIRFLOW = {
    "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__PARALLELISM": "4",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
    "AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL": "1",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
    "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "1",
    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2",
    "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "2",
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
    "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
    "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "600",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
}
"""Poll intervals that suit a test; the DAG file is parsed once (it does not change)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Deployment:
    """A running deployment: how to call its Airflow CLI and REST API, and what it writes to."""

    python: Path
    env: dict[str, str]
    api: str
    home: Path
    warehouse: str
    endpoint: str

    def airflow(self, *args: str) -> str:
        done = subprocess.run(
            [str(self.python), "-m", "airflow", *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert done.returncode == 0, f"airflow {' '.join(args)}: {done.stderr[-3000:]}"
        return done.stdout

    def get(self, path: str) -> Any:
        answer = httpx.get(f"{self.api}/api/v2/{path}", timeout=30)
        answer.raise_for_status()
        return answer.json()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        answer = httpx.post(f"{self.api}/api/v2/{path}", json=body, timeout=30)
        assert answer.is_success, answer.text
        return answer.json()

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}"
            for p in sorted(self.home.glob("*.out"))
        )


def _fresh_venv(root: Path, plugins: Path, requirements: str) -> Path:
    """A new venv holding fdp from the bundle's wheel; Airflow is the image's (this venv's).

    The ``.pth`` line puts this interpreter's site-packages after the new venv's own, as MWAA's
    image provides Airflow and its constraints; pip then installs what ``requirements.txt``
    asks for that the image lacks: here, fdp's wheel alone.
    """
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"

    def printed(code: str) -> str:
        run = [str(python), "-c", code]
        return subprocess.run(run, capture_output=True, text=True, check=True, env=clean).stdout

    site = printed("import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
    Path(site, "mwaa_image.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    local = root / "requirements.txt"
    local.write_text(requirements.replace(MWAA_PLUGINS_DIR, str(plugins)))
    pip = (sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet")
    done = subprocess.run(
        [*pip, "--no-index", "-r", str(local)],
        capture_output=True,
        text=True,
        check=False,
        env=clean,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    where = printed("import fdp; print(fdp.__file__)")
    assert where.startswith(site), where  # fdp is the wheel's, not the developer's copy
    return python


def _startup_env(startup: Path, options: dict[str, str]) -> dict[str, str]:
    """The environment after MWAA ran ``startup.sh`` with fdp's settings as Airflow options."""
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "TZ": "UTC"}
    base |= {f"AIRFLOW__FDP__{name}": value for name, value in options.items()}
    done = subprocess.run(
        ["sh", "-c", f'. "{startup}" && env -0'],
        env=base,
        capture_output=True,
        check=True,
        cwd=startup.parent,
    )
    pairs = (item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item)
    return dict(pairs)


def _create_database(postgres_url: str, prefix: str) -> str:
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}")
    return urlsplit(postgres_url)._replace(path=f"/{name}").geturl()


def _drop_database(postgres_url: str, url: str) -> None:
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute(f"DROP DATABASE IF EXISTS {urlsplit(url).path[1:]} WITH (FORCE)")


def _wait(what: str, ready: Callable[[], bool], deployment: Deployment | None = None) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not ready():
        if time.monotonic() > deadline:
            logs = deployment.logs() if deployment else ""
            raise AssertionError(f"timed out waiting for {what}\n{logs}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def vendor() -> Iterator[VendorServer]:
    server = VendorServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str,
    moto_endpoint: str,
    vendor: VendorServer,
) -> Iterator[Deployment]:
    import boto3

    root = tmp_path_factory.mktemp("rehearsal")
    bundle = build_bundle(root / "bundle", REPO)
    home = root / "airflow"
    plugins = home / "plugins"
    with zipfile.ZipFile(bundle.plugins_zip) as archive:
        archive.extractall(plugins)
    (home / "config").mkdir()
    (home / "config" / "airflow_local_settings.py").write_text(CLUSTER_POLICY)
    python = _fresh_venv(root / "venv", plugins, bundle.requirements.read_text())

    aws = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    boto3.client(
        "s3", endpoint_url=moto_endpoint, region_name="us-east-1", **_boto_keys(aws)
    ).create_bucket(Bucket=BUCKET)
    warehouse = _create_database(postgres_url, "fdp_rehearsal_wh")
    metadata = _create_database(postgres_url, "fdp_rehearsal_af")
    env = _startup_env(
        bundle.startup,
        {
            "DATA_DIR": f"s3://{BUCKET}/lake",
            "WAREHOUSE_URL": warehouse,
            "S3_ENDPOINT_URL": moto_endpoint,
            "AWS_REGION": "us-east-1",
            "SYMBOLS": ",".join(SYMBOLS),
            "ALPHAVANTAGE_API_KEY": KEY,
            "ALPHAVANTAGE_BASE_URL": vendor.url,
            "ALPHAVANTAGE_CALLS_PER_MINUTE": "1000",
            "ALPHAVANTAGE_CALLS_PER_DAY": "1000",
            "HTTP_TIMEOUT_S": "5",
            "HTTP_MAX_RETRIES": str(HTTP_RETRIES),
            "HTTP_BACKOFF_BASE_S": "0.05",
            "HTTP_BACKOFF_MAX_S": "0.1",
        },
    )
    api_port = _free_port()
    api = f"http://127.0.0.1:{api_port}"
    # fdp's Polars scans of the curated lake use Polars' own S3 client, which does not read
    # FDP_S3_ENDPOINT_URL: the stand-in's endpoint reaches it through the AWS variable.
    env |= aws | FAST_AIRFLOW | {"AWS_ENDPOINT_URL": moto_endpoint}
    env |= {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(bundle.dag.parent),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata.replace(
            "postgresql://", "postgresql+psycopg://", 1
        ),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": metadata.replace(
            "postgresql://", "postgresql+psycopg_async://", 1
        ),
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex,
        "AIRFLOW__API__SECRET_KEY": uuid.uuid4().hex,
    }
    deployed = Deployment(python, env, api, home, warehouse, moto_endpoint)
    services: list[subprocess.Popen[bytes]] = []
    try:
        deployed.airflow("db", "migrate")
        deployed.airflow("pools", "import", str(bundle.pools))
        for service in ("api-server", "scheduler", "dag-processor"):
            with (home / f"{service}.out").open("wb") as out:
                services.append(
                    subprocess.Popen(
                        [str(python), "-m", "airflow", service],
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        _wait("the API server", lambda: _answers(f"{api}/api/v2/monitor/health"), deployed)
        _wait("the DAG to be parsed", lambda: _has_dag(deployed), deployed)
        yield deployed
    finally:
        for process in services:
            process.terminate()
        for process in services:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        _drop_database(postgres_url, metadata)
        _drop_database(postgres_url, warehouse)


def _boto_keys(aws: dict[str, str]) -> dict[str, str]:
    return {
        "aws_access_key_id": aws["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": aws["AWS_SECRET_ACCESS_KEY"],
    }


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).is_success
    except httpx.HTTPError:
        return False


def _has_dag(deployment: Deployment) -> bool:
    answer = httpx.get(f"{deployment.api}/api/v2/dags/{DAG_ID}", timeout=10)
    return answer.is_success


def _logical(day: dt.date) -> dt.datetime:
    from fdp.orchestration.timetable import ExchangeSessionTimetable  # imports Airflow

    return ExchangeSessionTimetable().interval(day).start


def _runs(deployment: Deployment) -> dict[dt.date, dict[str, Any]]:
    """The DAG's runs by session date."""
    runs = deployment.get(f"dags/{DAG_ID}/dagRuns?limit=100")["dag_runs"]
    return {dt.datetime.fromisoformat(r["logical_date"]).date(): r for r in runs}


def _tasks(deployment: Deployment, run_id: str) -> dict[str, dict[str, Any]]:
    found = deployment.get(f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")["task_instances"]
    return {t["task_id"]: t for t in found}


def _scheduled_ingested(deployment: Deployment) -> bool:
    runs = [r for r in _runs(deployment).values() if r["run_type"] == "scheduled"]
    return bool(runs) and _tasks(deployment, runs[0]["dag_run_id"])["ingest"]["state"] == "success"


def _all_finished(deployment: Deployment) -> bool:
    return all(r["state"] in ("success", "failed") for r in _runs(deployment).values())


def _wait_for_runs(deployment: Deployment, days: tuple[dt.date, ...]) -> dict[dt.date, Any]:
    finished: dict[dt.date, Any] = {}

    def done() -> bool:
        runs = _runs(deployment)
        finished.update(
            {d: runs[d] for d in days if d in runs and runs[d]["state"] in ("success", "failed")}
        )
        return len(finished) == len(days)

    _wait(f"runs of {days}", done, deployment)
    return finished


def _backfill(deployment: Deployment, first: dt.date, last: dt.date) -> None:
    deployment.airflow(
        "backfill",
        "create",
        "--dag-id",
        DAG_ID,
        "--from-date",
        _logical(first).isoformat(),
        "--to-date",
        _logical(last).isoformat(),
        "--max-active-runs",
        "1",
    )


def _warehouse_data(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every data table's rows; the run logs (one row per run or call) and the symbol
    dimension's ``updated_at`` (a load refreshes it) left out."""
    import psycopg

    logs = ("pipeline_runs", "dq_results", "vendor_calls", "schema_migrations")
    with psycopg.connect(url) as con:
        columns: dict[str, list[str]] = {}
        for table, column in con.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
        ):
            if table not in logs and column != "updated_at":
                columns.setdefault(table, []).append(column)
        # Ordered by every column: a key may hold several versions (the history table).
        return {
            t: con.execute(
                f"SELECT {', '.join(c)} FROM {t} ORDER BY "
                + ", ".join(str(i) for i in range(1, len(c) + 1))
            ).fetchall()
            for t, c in columns.items()
        }


RUN_RECORDS = ("lake/state/", "lake/reports/", "lake/curated/_changes/")
"""Per-run records, not data: the vendor call counts, the gate's report (it shows when it
ran) and the manifest of what the last run of a session changed (the load's input)."""


def _lake_objects(endpoint: str) -> dict[str, str]:
    """Every lake data object's key and content hash (raw, curated, rejected)."""
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    objects: dict[str, str] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="lake/"):
        for item in page.get("Contents", []):
            if not item["Key"].startswith(RUN_RECORDS):
                body = s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
                objects[item["Key"]] = hashlib.sha256(body).hexdigest()
    return objects


def _pipeline_runs(url: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(url) as con:
        return con.execute(
            "SELECT run_date, stage, status FROM pipeline_runs ORDER BY run_date, stage"
        ).fetchall()


def _serve_sessions(vendor: VendorServer, days: tuple[dt.date, ...]) -> None:
    """Each symbol's next answers end at these sessions in turn, as the vendor's would on
    each session's evening (the quality gate rejects a bar dated after its ingest date)."""
    for symbol in SYMBOLS:
        vendor.scripts[symbol] = [Answer(body=vendor_doc(symbol, 100, last=d)) for d in days]


def test_three_sessions_a_cleared_day_and_a_broken_vendor_as_deployed(
    deployment: Deployment, vendor: VendorServer
) -> None:
    # Unpaused, the scheduler starts the latest session's run at once (catchup is off); it
    # calls the vendor first, then the backfill's runs call it one session at a time.
    deployment.airflow("dags", "unpause", DAG_ID)
    _wait("the scheduler's own run to ingest", lambda: _scheduled_ingested(deployment), deployment)
    _serve_sessions(vendor, SESSIONS)
    _backfill(deployment, SESSIONS[0], SESSIONS[-1])
    runs = _wait_for_runs(deployment, SESSIONS)
    _wait("every run to finish", lambda: _all_finished(deployment), deployment)
    for day, run in runs.items():
        tasks = _tasks(deployment, run["dag_run_id"])
        assert {t: tasks[t]["state"] for t in TASKS} == dict.fromkeys(TASKS, "success"), day
    stages = {"ingest", "validate", "transform", "load", "reconcile"}
    recorded = _pipeline_runs(deployment.warehouse)
    assert {(d, s, "success") for d in SESSIONS for s in stages} <= set(recorded), recorded
    data, lake = _warehouse_data(deployment.warehouse), _lake_objects(deployment.endpoint)
    prices = data["fact_stock_prices"]
    assert {(r[0]) for r in prices} >= {f"{s}_{d:%Y%m%d}" for s in SYMBOLS for d in SESSIONS}

    # Clear the middle session's run: every task runs again and nothing changes.
    middle = runs[SESSIONS[1]]
    _serve_sessions(vendor, SESSIONS[1:2])
    calls_before = len(vendor.calls)
    deployment.post(
        f"dags/{DAG_ID}/clearTaskInstances",
        {"dry_run": False, "only_failed": False, "dag_run_id": middle["dag_run_id"]},
    )
    _wait(
        "the cleared run to finish again",
        lambda: (
            _runs(deployment)[SESSIONS[1]]["state"] == "success"
            and _tasks(deployment, middle["dag_run_id"])["notify"]["try_number"] == 2
        ),
        deployment,
    )
    assert len(vendor.calls) == calls_before + len(SYMBOLS)  # the ingest really ran again
    assert _warehouse_data(deployment.warehouse) == data
    assert _lake_objects(deployment.endpoint) == lake

    # A broken vendor answer (a body cut short, which a retry may fix): the ingest task is
    # tried 1 + retries times, each trying the vendor 1 + HTTP_MAX_RETRIES times, then fails.
    for symbol in SYMBOLS:
        vendor.scripts[symbol] = [Answer(declared_length=10_000_000)]
    calls_before = len(vendor.calls)
    # One backfill per DAG at a time (the first one is still open): trigger the day by hand.
    deployment.post(f"dags/{DAG_ID}/dagRuns", {"logical_date": _logical(BROKEN).isoformat()})
    run = _wait_for_runs(deployment, (BROKEN,))[BROKEN]
    assert run["state"] == "failed"
    tasks = _tasks(deployment, run["dag_run_id"])
    tries = 1 + RETRY_DEFAULTS["retries"]
    assert tasks["ingest"]["state"] == "failed"
    assert tasks["ingest"]["try_number"] == tries
    assert len(vendor.calls) - calls_before == tries * (1 + HTTP_RETRIES) * len(SYMBOLS)
    for never_ran in TASKS[1:]:
        assert tasks[never_ran]["state"] == "upstream_failed", never_ran
    recorded = _pipeline_runs(deployment.warehouse)
    assert [r for r in recorded if r[0] == BROKEN] == [(BROKEN, "ingest", "failed")]
    assert _warehouse_data(deployment.warehouse) == data
    assert _lake_objects(deployment.endpoint) == lake
