"""A real Airflow for the orchestration tests: its own home, metadata DB and plugins folder.

Airflow reads its configuration when first imported, so every test that imports Airflow
depends on ``airflow_home``, which sets the environment first and migrates a fresh sqlite
metadata DB (``airflow db migrate`` in a subprocess, as an operator would).
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from fdp.orchestration.bundle import PLUGIN_MODULE, PLUGIN_SHIM

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
DAG_ID = "financial_data_pipeline"


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An initialised ``AIRFLOW_HOME`` with fdp's plugin shim installed in its plugins folder."""
    home = tmp_path_factory.mktemp("airflow_home")
    plugins = home / "plugins"
    plugins.mkdir()
    (plugins / PLUGIN_MODULE).write_text(PLUGIN_SHIM)
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        airflow = Path(sys.executable).with_name("airflow")
        done = subprocess.run(
            [str(airflow), "db", "migrate"], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr[-3000:]
        yield home


@pytest.fixture
def dag(airflow_home: Path) -> object:
    """The DAG as Airflow's own DagBag parses it from ``dags/``."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 2.10
        # A DAG run's note has a foreign key to FAB's user table, which must be mapped too.
        import airflow.providers.fab.auth_manager.models  # noqa: F401
        from airflow.models.dagbag import DagBag
    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    return bag.get_dag(DAG_ID)


@pytest.fixture
def warehouse_db(postgres_url: str) -> Iterator[str]:
    """The URL of a new, uniquely named PostgreSQL database, dropped after the test."""
    import psycopg

    name = f"fdp_airflow_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}")
    parts = urlsplit(postgres_url)
    yield urlunsplit(parts._replace(path=f"/{name}"))
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
