"""fdp over Spark Connect: a Connect server (its executors on the two-worker cluster) and fdp
as a client with no JVM of its own (``JAVA_HOME`` points nowhere, so a classic session cannot
start by mistake), pointed at the server by ``FDP_SPARK_REMOTE``. The lake must equal the
Polars engine's lake and a re-run must leave it byte-identical.

Not on Spark 3.5: its Connect server jar is a Maven download, and there is no Maven here."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_cluster import RUN, SYMBOLS, assert_same_lake
from test_spark import digests

from spark_cluster import Cluster, fdp_cli, finished_tasks

pytestmark = [pytest.mark.spark, pytest.mark.cluster, pytest.mark.connect, pytest.mark.slow]

NO_JVM = "/nonexistent-java-home"


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("raw") / "data"
    fdp_cli(data_dir, "generate", *SYMBOLS, "--start", "2023-01-03", "--days", "120")
    fdp_cli(data_dir, "generate", *SYMBOLS, "--start", "2023-06-26", "--days", "3")
    return data_dir


def connect_tasks(cluster: Cluster) -> int:
    """Tasks the Connect server's executors finished so far (it is the running application)."""
    apps = [a["id"] for a in cluster.state()["activeapps"]]
    assert len(apps) == 1, apps
    return sum(finished_tasks(w, apps[0]) for w in cluster.workers)


def test_validate_over_connect(
    connect_url: str, spark_cluster: Cluster, raw: Path, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(raw, data_dir)
    before = connect_tasks(spark_cluster)
    out = fdp_cli(
        data_dir,
        "validate",
        *("--date", "2023-06-26", "--engine", "spark"),
        spark_remote=connect_url,
        env={"JAVA_HOME": NO_JVM},
    )
    assert "PASSED" in out.stdout
    assert connect_tasks(spark_cluster) > before


def test_transform_over_connect_equals_polars_and_reruns_byte_identical(
    connect_url: str, spark_cluster: Cluster, raw: Path, tmp_path: Path
) -> None:
    polars_dir, data_dir = tmp_path / "polars", tmp_path / "data"
    shutil.copytree(raw, polars_dir)
    shutil.copytree(raw, data_dir)
    fdp_cli(polars_dir, "transform", *RUN, "--engine", "polars")
    before = connect_tasks(spark_cluster)
    remote = {"spark_remote": connect_url}
    no_jvm = {"JAVA_HOME": NO_JVM}
    fdp_cli(data_dir, "transform", *RUN, "--engine", "spark", env=no_jvm, **remote)
    assert_same_lake(data_dir, polars_dir)
    assert connect_tasks(spark_cluster) > before

    lake = data_dir / "curated"
    stored = digests(lake)
    out = fdp_cli(data_dir, "transform", *RUN, "--engine", "spark", env=no_jvm, **remote)
    assert digests(lake) == stored
    assert "written 0," in out.stdout
