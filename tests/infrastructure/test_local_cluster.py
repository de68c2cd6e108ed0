"""docker-compose.yml is valid for the real Compose v2 binary (offline), mounts files that
exist, exposes nothing beyond loopback; the Dockerfile passes hadolint and runs as non-root."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from infra_tools import ROOT, compose_binary, run, tool

SERVICES = {"postgres", "airflow", "spark-master", "spark-worker", "grafana"}


def compose_config(*args: str, cwd: Path = ROOT) -> Any:
    result = run(compose_binary(), "--profile", "spark", "config", *args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if "json" in args else result.stdout


def test_compose_file_is_valid_with_and_without_spark() -> None:
    for profile in ([], ["--profile", "spark"]):
        result = run(compose_binary(), *profile, "config", "-q")
        assert result.returncode == 0, result.stderr


def test_compose_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = (
        (ROOT / "docker-compose.yml")
        .read_text()
        .replace("    image: postgres:", "    imag: postgres:")
    )
    (tmp_path / "docker-compose.yml").write_text(broken)
    result = run(compose_binary(), "config", "-q", cwd=tmp_path)
    assert result.returncode != 0
    assert "imag" in result.stderr


def test_services_mounts_and_ports() -> None:
    config = compose_config("--format", "json")
    services = config["services"]
    assert set(services) == SERVICES
    binds = [
        (name, v)
        for name, svc in services.items()
        for v in svc.get("volumes", [])
        if v["type"] == "bind"
    ]
    assert binds
    for name, volume in binds:
        assert Path(volume["source"]).exists(), f"{name}: {volume['source']}"
        assert volume.get("read_only") is True, f"{name} may write {volume['source']}"
    targets = {v["target"]: v["source"] for _, v in binds}
    assert targets["/docker-entrypoint-initdb.d/10-init.sql"] == str(
        ROOT / "docker/postgres/init.sql"
    )
    provisioning = ROOT / "grafana/provisioning/dashboards/fdp.yaml"
    dashboards_path = re.search(r"path: (\S+)", provisioning.read_text())
    assert dashboards_path
    assert targets[dashboards_path.group(1)] == str(ROOT / "grafana/dashboards")
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert port["host_ip"] == "127.0.0.1", f"{name} publishes {port} beyond loopback"
    for name in ("airflow", "spark-master", "spark-worker"):
        assert services[name]["build"]["dockerfile"] == "Dockerfile"


def test_init_sql_creates_both_databases_and_a_read_only_role() -> None:
    init = (ROOT / "docker/postgres/init.sql").read_text()
    for statement in (
        "CREATE DATABASE airflow",
        "CREATE DATABASE warehouse",
        "CREATE ROLE grafana",
    ):
        assert statement in init
    assert "GRANT SELECT ON TABLES TO grafana" in init
    assert "GRANT INSERT" not in init
    assert "GRANT ALL" not in init


def test_dockerfile_passes_hadolint() -> None:
    result = run(tool("hadolint"), "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_is_multi_stage_slim_non_root_with_java() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, flags=re.M)
    assert len(stages) >= 2
    assert all("slim" in s for s in stages)
    user = re.findall(r"^USER (\S+)", text, flags=re.M)
    assert user
    assert user[-1].split(":")[0] not in ("root", "0")
    assert "openjdk-17-jre-headless" in text
    assert "JAVA_HOME" in text
    for copied in re.findall(r"^COPY (?!--from)(?:--\S+ )*(\S+) ", text, flags=re.M):
        assert (ROOT / copied).exists(), copied


def test_airflow_drives_the_compose_spark_master_with_valid_settings() -> None:
    """The Spark engine's settings in Airflow name the compose master (``spark-master``, port
    7077, the master's default) and parse as fdp's settings; no unread variable is left."""
    from fdp.config import Settings

    services = compose_config("--format", "json")["services"]
    airflow = services["airflow"]["environment"]
    master = airflow["FDP_SPARK_MASTER"]
    assert master == "spark://spark-master:7077"
    assert services["spark-worker"]["command"][-1] == master
    assert "spark-master" in services["spark-master"]["command"]
    settings = Settings(spark_master=master, spark_conf=airflow["FDP_SPARK_CONF"])
    assert settings.spark_conf["spark.driver.host"] == "airflow"
    assert not any("SPARK_MASTER_URL" in svc.get("environment", {}) for svc in services.values())


def test_airflow_env_is_valid_fdp_settings_with_the_spark_engine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``FDP_ENGINE=spark docker compose --profile spark up``: every FDP_* variable Airflow's
    tasks get is a setting, and together they run the Spark engine on the compose master."""
    from fdp.config import Settings

    monkeypatch.setenv("FDP_ENGINE", "spark")
    airflow = compose_config("--format", "json")["services"]["airflow"]["environment"]
    for name in [n for n in list(os.environ) if n.startswith("FDP_")]:
        monkeypatch.delenv(name)
    for name, value in airflow.items():
        if name.startswith("FDP_"):
            monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.engine == "spark"
    assert settings.spark_master == "spark://spark-master:7077"
    assert settings.warehouse_url.startswith("postgresql://postgres:")
