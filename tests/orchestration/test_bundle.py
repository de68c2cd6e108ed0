"""``fdp bundle`` builds everything an MWAA environment's bucket needs."""

from __future__ import annotations

import json
import subprocess
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest
from click.testing import CliRunner

from fdp.cli import main
from fdp.errors import ConfigError
from fdp.orchestration.bundle import PLUGIN_SHIM, build_bundle
from fdp.report import LIBRARY

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bundle_command_builds_the_mwaa_bundle(tmp_path: Path) -> None:
    out = tmp_path / "dist" / "mwaa"
    (out / "dags").mkdir(parents=True)
    (out / "dags" / "stale.py").write_text("left over from an older build")
    result = CliRunner().invoke(main, ["bundle", "--output", str(out), "--project", str(REPO)])
    assert result.exit_code == 0, result.output

    dag = out / "dags" / "financial_data_pipeline.py"
    assert dag.read_bytes() == (REPO / "dags" / "financial_data_pipeline.py").read_bytes()
    assert sorted(p.name for p in (out / "dags").iterdir()) == ["financial_data_pipeline.py"]

    wheel_name = f"fdp-{version('fdp')}-py3-none-any.whl"
    requirements = (out / "requirements.txt").read_text().splitlines()
    assert requirements == [f"fdp[postgres,aws] @ file:///usr/local/airflow/plugins/{wheel_name}"]
    with zipfile.ZipFile(out / "plugins.zip") as archive:
        assert sorted(archive.namelist()) == sorted([wheel_name, "fdp_plugin.py"])
        assert archive.read("fdp_plugin.py").decode() == PLUGIN_SHIM
    with zipfile.ZipFile(out / "plugins" / wheel_name) as wheel:
        names = wheel.namelist()
    assert "fdp/orchestration/timetable.py" in names
    assert "fdp/pipeline.py" in names
    assert "fdp/quality/stock_data_suite.json" in names
    assert f"fdp/report/assets/{LIBRARY}" in names, "the report's chart library is not packaged"

    startup = out / "startup.sh"
    assert startup.stat().st_mode & 0o111
    assert subprocess.run(["sh", "-n", str(startup)], check=False).returncode == 0
    pools = json.loads((out / "pools.json").read_text())
    assert pools["alpha_vantage_api"]["slots"] >= 1


def test_bundle_refuses_a_directory_that_is_not_the_project(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not fdp's project"):
        build_bundle(tmp_path / "out", tmp_path)
