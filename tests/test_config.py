"""Where Spark runs is a setting: FDP_SPARK_MASTER, FDP_SPARK_REMOTE and FDP_SPARK_CONF are read
from the environment, and a bad value is refused with a message naming the variable (and never
the Spark Connect token)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from fdp.cli import main
from fdp.config import Settings
from fdp.redaction import redact


@pytest.mark.parametrize(
    "master",
    [
        "local",
        "local[2]",
        "local[*]",
        "local[2,3]",
        "local-cluster[2,1,1024]",
        "spark://10.0.0.5:7077",
        "spark://a:7077,b:7077",
        "yarn",
        "k8s://https://kube:6443",
    ],
)
def test_spark_masters_spark_accepts(master: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FDP_SPARK_MASTER", master)
    assert Settings().spark_master == master


def test_spark_defaults_run_locally_on_every_core() -> None:
    settings = Settings()
    assert (settings.spark_master, settings.spark_remote, settings.spark_conf) == (
        "local[*]",
        None,
        {},
    )


def test_spark_conf_is_a_json_object_of_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "FDP_SPARK_CONF",
        '{"spark.executor.memory": "4g", "spark.executor.instances": 2, "spark.x.on": true}',
    )
    assert Settings().spark_conf == {
        "spark.executor.memory": "4g",
        "spark.executor.instances": "2",
        "spark.x.on": "true",
    }


def test_spark_remote_token_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    url = (
        "sc://dbc-1.cloud.databricks.com:443/;token=dapiCONNECT-TOKEN-77;x-databricks-cluster-id=c1"
    )
    monkeypatch.setenv("FDP_SPARK_REMOTE", url)
    assert Settings().spark_remote == url
    assert "CONNECT-TOKEN-77" not in redact(f"connecting to {url}, token dapiCONNECT-TOKEN-77")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("FDP_SPARK_MASTER", "spark://host-without-port", "is not a Spark master"),
        ("FDP_SPARK_MASTER", "mesos://m:5050", "is not a Spark master"),
        ("FDP_SPARK_MASTER", "local[0]", "is not a Spark master"),
        ("FDP_SPARK_REMOTE", "http://h:15002", "is not a Spark Connect URL"),
        ("FDP_SPARK_REMOTE", "sc://h:99999", "is not a Spark Connect URL"),
        ("FDP_SPARK_REMOTE", "sc://h:15002/token=BADFORM-TOKEN-1", "is not a Spark Connect URL"),
        ("FDP_SPARK_CONF", "spark.executor.memory=4g", "FDP_SPARK_CONF is not JSON"),
        ("FDP_SPARK_CONF", '["spark.executor.memory"]', "must be a JSON object"),
        ("FDP_SPARK_CONF", '{"spark.a": {"b": 1}}', "values must be strings or numbers"),
    ],
)
def test_bad_spark_settings_are_usage_errors(variable: str, value: str, message: str) -> None:
    result = CliRunner().invoke(main, ["validate", "--date", "2024-01-02"], env={variable: value})
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert variable.removeprefix("FDP_").lower() in result.output
    assert "BADFORM-TOKEN-1" not in result.output
