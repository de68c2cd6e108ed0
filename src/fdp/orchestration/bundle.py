"""The MWAA bundle: what an Amazon MWAA environment's S3 bucket needs, built by one command.

Layout of ``dist/mwaa/``::

    dags/financial_data_pipeline.py   the DAG, unchanged
    plugins.zip                       fdp's wheel + the plugin shim (MWAA unpacks it to
                                      /usr/local/airflow/plugins/)
    plugins/                          the same files, unzipped (for a plain Airflow)
    requirements.txt                  fdp pinned to that wheel, with the extras MWAA needs
    startup.sh                        MWAA's startup script (fdp.* options -> FDP_* settings)
    pools.json                        the API pool, for ``airflow pools import``
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from fdp.errors import ConfigError, TerminalError
from fdp.orchestration.policy import API_POOL

DAG_FILE = "financial_data_pipeline.py"
MWAA_PLUGINS_DIR = "/usr/local/airflow/plugins"
WHEEL_EXTRAS = ("postgres", "aws")
PLUGIN_MODULE = "fdp_plugin.py"
PLUGIN_SHIM = '''"""Registers fdp's Airflow plugin (its session timetable) from the wheel."""

from fdp.orchestration.plugin import FdpPlugin

__all__ = ["FdpPlugin"]
'''
STARTUP_SH = r"""#!/bin/sh
# MWAA runs this on every scheduler, worker and web server before Airflow starts.
set -eu
# MWAA passes fdp's settings as custom Airflow options (fdp.data_dir=...), which arrive as
# AIRFLOW__FDP__DATA_DIR ...: export each as the FDP_* setting fdp reads.
for name in $(env | sed -n 's/^AIRFLOW__FDP__\([A-Z0-9_]*\)=.*/\1/p'); do
    eval "export FDP_${name}=\"\${AIRFLOW__FDP__${name}}\""
done
# No JVM here: the workers transform with Polars, and engine=glue runs Spark on AWS Glue.
"""
_PIP_WHEEL = (sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation")
_PROJECT_FILES = ("pyproject.toml", "README.md", "LICENSE")
_OUTPUTS = ("dags", "plugins", "plugins.zip", "requirements.txt", "startup.sh", "pools.json")


@dataclass(frozen=True, slots=True)
class Bundle:
    """Where each part of a built bundle is."""

    root: Path
    dag: Path
    wheel: Path
    plugins_zip: Path
    requirements: Path
    startup: Path
    pools: Path


def build_wheel(project: Path, out_dir: Path) -> Path:
    """Build fdp's wheel from a copy of the sources (the working tree gets no build files)."""
    with tempfile.TemporaryDirectory(prefix="fdp-wheel-") as tmp:
        copy = Path(tmp, "project")
        shutil.copytree(
            project / "src",
            copy / "src",
            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
        )
        for name in _PROJECT_FILES:
            if (project / name).exists():
                shutil.copy2(project / name, copy / name)
        done = subprocess.run(
            [*_PIP_WHEEL, "--wheel-dir", str(out_dir), str(copy)],
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        raise TerminalError(f"building the fdp wheel from {project} failed: {done.stderr[-2000:]}")
    wheels = sorted(out_dir.glob("fdp-*.whl"))
    if len(wheels) != 1:
        raise TerminalError(f"expected one fdp wheel in {out_dir}, found {wheels}")
    return wheels[0]


def requirements_text(wheel_name: str) -> str:
    """fdp pinned to the exact wheel in plugins.zip; MWAA provides Airflow itself."""
    extras = ",".join(WHEEL_EXTRAS)
    return f"fdp[{extras}] @ file://{MWAA_PLUGINS_DIR}/{wheel_name}\n"


def build_bundle(output: Path, project: Path) -> Bundle:
    """Build the MWAA bundle for the project at ``project`` into ``output``."""
    dag_source = project / "dags" / DAG_FILE
    if not (project / "pyproject.toml").exists() or not dag_source.exists():
        raise ConfigError(f"{project} is not fdp's project: no pyproject.toml or dags/{DAG_FILE}")
    output.mkdir(parents=True, exist_ok=True)
    for name in _OUTPUTS:
        stale = output / name
        if stale.is_dir():
            shutil.rmtree(stale)
        else:
            stale.unlink(missing_ok=True)
    plugins = output / "plugins"
    plugins.mkdir()
    wheel = build_wheel(project, plugins)
    (plugins / PLUGIN_MODULE).write_text(PLUGIN_SHIM)
    plugins_zip = output / "plugins.zip"
    with zipfile.ZipFile(plugins_zip, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(plugins.iterdir()):
            archive.write(path, path.name)
    (output / "dags").mkdir()
    dag = output / "dags" / DAG_FILE
    shutil.copy2(dag_source, dag)
    requirements = output / "requirements.txt"
    requirements.write_text(requirements_text(wheel.name))
    startup = output / "startup.sh"
    startup.write_text(STARTUP_SH)
    startup.chmod(0o755)
    pools = output / "pools.json"
    pool = {"slots": 1, "description": "Alpha Vantage API calls", "include_deferred": False}
    pools.write_text(json.dumps({API_POOL: pool}, indent=2) + "\n")
    return Bundle(output, dag, wheel, plugins_zip, requirements, startup, pools)
