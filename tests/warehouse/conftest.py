"""Warehouse fixtures: one URL per destination.

PostgreSQL tests share one uniquely named database per session (dropped at the end); each
test gets its own schema through the connection's ``search_path``.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

from fdp.config import Settings


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """A fresh schema in the session database, selected through ``search_path``."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_database, autocommit=True) as con:
        con.execute(f"CREATE SCHEMA {schema}")
    return f"{pg_database}?options={quote(f'-csearch_path={schema}')}"


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One test body per destination."""
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'wh.duckdb'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def wh_settings(tmp_path: Path, warehouse_url: str) -> Settings:
    return Settings(
        data_dir=str(tmp_path / "data"),
        warehouse_url=warehouse_url,
        warehouse_attempts=8,
        warehouse_retry_base_s=0.05,
    )
