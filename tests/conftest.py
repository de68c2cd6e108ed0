"""Shared fixtures: an isolated data directory, and the real services integration tests need.

A test that needs PostgreSQL or Java skips with a loud reason when the service is absent;
with ``FDP_REQUIRE_ALL=1`` (as in CI) the skip becomes a failure, so CI never hides a test.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from fdp.config import Settings
from needs import unavailable

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's FDP_* settings or writes under ./data."""
    for name in list(os.environ):
        if name.startswith("FDP_") and name not in ("FDP_REQUIRE_ALL", "FDP_TEST_POSTGRES_URL"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("FDP_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=str(tmp_path / "data"))


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of a reachable PostgreSQL (``FDP_TEST_POSTGRES_URL`` or 127.0.0.1:5432)."""
    url = os.environ.get("FDP_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    from urllib.parse import urlparse

    parsed = urlparse(url)
    if not _port_open(parsed.hostname or "127.0.0.1", parsed.port or 5432):
        unavailable(f"no PostgreSQL at {parsed.hostname}:{parsed.port} (set FDP_TEST_POSTGRES_URL)")
    return url


@pytest.fixture(scope="session")
def java_home() -> str:
    """Java for a local Spark, found on the PATH or through JAVA_HOME."""
    java = shutil.which("java") or (
        os.environ.get("JAVA_HOME") and str(Path(os.environ["JAVA_HOME"], "bin", "java"))
    )
    if not java or not Path(java).exists():
        unavailable("no Java on the PATH or in JAVA_HOME (needed for Spark)")
    return str(java)


@pytest.fixture(scope="session")
def spark(java_home: str) -> Iterator[object]:
    """One local Spark session for the whole test run (it takes 6-10 s to start)."""
    from fdp.spark_session import SHORT_RUN_CONF, session

    spark = session(Settings(spark_master="local[2]", spark_conf=SHORT_RUN_CONF))
    yield spark
    spark.stop()


@pytest.fixture(scope="session", params=["polars", pytest.param("spark", marks=pytest.mark.spark)])
def engine(request: pytest.FixtureRequest) -> object:
    """Each transform engine in turn (engine-facing tests run one body per engine)."""
    from fdp.engines import get_engine

    if request.param == "spark":
        from fdp.engines._spark import SparkEngine

        return SparkEngine(request.getfixturevalue("spark"))
    return get_engine(request.param)


@pytest.fixture(scope="session")
def pg_database(postgres_url: str) -> Iterator[str]:
    """A uniquely named PostgreSQL database for this test session, dropped at its end."""
    import uuid
    from urllib.parse import urlsplit

    import psycopg

    name = f"fdp_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}")
    yield urlsplit(postgres_url)._replace(path=f"/{name}").geturl()
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """moto's server on loopback (S3, Secrets Manager, Glue): a LOCAL STAND-IN for AWS."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Dummy credentials aimed at the moto server; returns its endpoint URL."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    return moto_endpoint
