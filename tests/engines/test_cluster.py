"""fdp on a real Spark standalone cluster: a master and two workers, each a JVM of its own, on
127.0.0.1. ``fdp`` runs as its own process (as a user runs it), pointed at the cluster by
``FDP_SPARK_MASTER``; its lake must equal the Polars engine's lake, a re-run must leave it
byte-identical, the executors must really run on both workers, and losing an executor in the
middle of a transform must cost only a task retry."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import polars as pl
import psutil
import pytest
from polars.testing import assert_frame_equal
from test_spark import curated, digests

from fdp.config import Settings
from spark_cluster import FDP, Cluster, fdp_cli, finished_tasks, spark_env

pytestmark = [pytest.mark.spark, pytest.mark.cluster, pytest.mark.slow]

RUN = ("--start", "2023-01-01", "--end", "2023-12-31")
"""Every batch ``land`` makes: a history batch, then a few days overlapping its last one."""


SYMBOLS = ("--symbols", "AAA,BBB,CCC")


def lake_rows(data_dir: Path) -> pl.DataFrame:
    """The curated rows, without when they were processed."""
    return curated(Settings(data_dir=str(data_dir))).drop("processing_timestamp")


def assert_same_lake(actual: Path, expected: Path) -> None:
    rows, want = lake_rows(actual), lake_rows(expected)
    assert rows.height == want.height > 0
    assert_frame_equal(rows, want, check_exact=False, rel_tol=1e-9, abs_tol=1e-9)


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A raw zone to copy (each engine's lake is built from the same objects): 120 sessions,
    then a batch of 3 overlapping the last one (a correction)."""
    data_dir = tmp_path_factory.mktemp("raw") / "data"
    fdp_cli(data_dir, "generate", *SYMBOLS, "--start", "2023-01-03", "--days", "120")
    fdp_cli(data_dir, "generate", *SYMBOLS, "--start", "2023-06-26", "--days", "3")
    return data_dir


@pytest.fixture(scope="module")
def polars_lake(raw: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("polars") / "data"
    shutil.copytree(raw, data_dir)
    fdp_cli(data_dir, "transform", *RUN, "--engine", "polars")
    return data_dir


def new_app(cluster: Cluster, known: set[str]) -> str:
    """The one application the master saw finish since ``known``."""
    apps = {a["id"] for a in cluster.state()["completedapps"]} - known
    assert len(apps) == 1, apps
    return apps.pop()


def test_validate_runs_on_both_workers(spark_cluster: Cluster, raw: Path, tmp_path: Path) -> None:
    """The validate stage on Spark (the GX suite) is an application of the cluster, whose two
    executors, one per worker JVM, each run its tasks."""
    data_dir = tmp_path / "data"
    shutil.copytree(raw, data_dir)
    seen = {a["id"] for a in spark_cluster.state()["completedapps"]}
    env = {
        "spark_master": spark_cluster.url,
        "spark_conf": json.dumps({"spark.ui.enabled": "false"}),
    }
    out = fdp_cli(data_dir, "validate", "--date", "2023-06-26", "--engine", "spark", **env)
    assert "PASSED" in out.stdout
    app = new_app(spark_cluster, seen)
    for worker in spark_cluster.workers:
        assert finished_tasks(worker, app) > 0, f"no task of {app} ran in {worker.work_dir}"


def test_transform_on_the_cluster_equals_polars_and_reruns_byte_identical(
    spark_cluster: Cluster, raw: Path, polars_lake: Path, tmp_path: Path
) -> None:
    """The gate validates on the cluster too (the batches were never validated); the re-run
    finds them validated, so it is the transform alone, and it must run on the cluster."""
    data_dir = tmp_path / "data"
    shutil.copytree(raw, data_dir)
    seen = {a["id"] for a in spark_cluster.state()["completedapps"]}
    conf = json.dumps({"spark.ui.enabled": "false"})
    cluster = {"spark_master": spark_cluster.url, "spark_conf": conf}
    fdp_cli(data_dir, "transform", *RUN, "--engine", "spark", **cluster)
    assert_same_lake(data_dir, polars_lake)
    app = new_app(spark_cluster, seen)
    for worker in spark_cluster.workers:  # both workers' executors ran tasks of the run
        assert finished_tasks(worker, app) > 0, f"no task of {app} ran in {worker.work_dir}"

    lake = data_dir / "curated"
    stored = digests(lake)
    out = fdp_cli(data_dir, "transform", *RUN, "--engine", "spark", **cluster)
    assert digests(lake) == stored
    assert "written 0," in out.stdout
    rerun = new_app(spark_cluster, seen | {app})
    assert sum(finished_tasks(w, rerun) for w in spark_cluster.workers) > 0


def _in_flight(cluster: Cluster) -> tuple[int, psutil.Process] | None:
    """A worker's executor JVM with a task running now (its log: more started than finished)."""
    for i, worker in enumerate(cluster.workers):
        for executor in worker.executors():
            args = executor.cmdline()
            app, number = args[args.index("--app-id") + 1], args[args.index("--executor-id") + 1]
            log = worker.work_dir / app / number / "stderr"
            text = log.read_text(errors="replace") if log.exists() else ""
            if text.count("Running task") > text.count("Finished task"):
                return i, executor
    return None


def test_losing_an_executor_mid_transform_costs_a_task_retry_only(
    spark_cluster: Cluster, tmp_path: Path
) -> None:
    """300,000 bars; once the gate has validated them (on the cluster), one executor JVM is
    killed (SIGKILL) while it runs a transform task: the job finishes on a relaunched executor
    and the lake equals the Polars lake."""
    big = ("--universe", "300", "--start", "2019-01-02", "--days", "1000", "--ingest-date")
    spark_dir, polars_dir, events = tmp_path / "spark", tmp_path / "polars", tmp_path / "events"
    fdp_cli(spark_dir, "generate", *big, "2024-01-02")
    shutil.copytree(spark_dir, polars_dir)
    events.mkdir()
    conf = {
        "spark.ui.enabled": "false",
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": events.as_uri(),
        # One plain JSON file per application (Spark 4 compresses and rolls it by default).
        "spark.eventLog.compress": "false",
        "spark.eventLog.rolling.enabled": "false",
    }
    env = spark_env(
        FDP_DATA_DIR=str(spark_dir),
        FDP_SPARK_MASTER=spark_cluster.url,
        FDP_SPARK_CONF=json.dumps(conf),
    )
    run = subprocess.Popen(
        [FDP, "transform", "--date", "2024-01-02", "--engine", "spark"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    reports = spark_dir / "reports"
    killed = None
    while killed is None and run.poll() is None:
        validated = reports.exists() and any(p.is_file() for p in reports.rglob("*"))
        killed = _in_flight(spark_cluster) if validated else None
        time.sleep(0.2)
    assert killed is not None, "the transform ended before a task could be caught running"
    worker, executor = killed
    executor.kill()
    _, err = run.communicate(timeout=600)
    assert run.returncode == 0, err[-6000:]

    lost = [
        event
        for log in events.rglob("*")
        if log.is_file()
        for event in map(json.loads, log.read_text().splitlines())
        if event["Event"] == "SparkListenerTaskEnd"
        and event["Task End Reason"]["Reason"] == "ExecutorLostFailure"
    ]
    assert lost, f"no task was lost with the executor killed on worker {worker}"
    fdp_cli(polars_dir, "transform", "--date", "2024-01-02", "--engine", "polars")
    assert_same_lake(spark_dir, polars_dir)
