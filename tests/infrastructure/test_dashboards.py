"""Grafana's provisioning and dashboards agree, and every dashboard query runs on a
PostgreSQL warehouse created by fdp's own migrations."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import yaml
from infra_tools import ROOT

DASHBOARDS = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
DATASOURCES = ROOT / "grafana" / "provisioning" / "datasources" / "warehouse.yaml"
TABLES = {"fact_stock_prices", "dim_symbol", "pipeline_runs", "dq_results"}

# Grafana's expansion of the macros and variables the dashboards use, for a fixed range
TIME_FILTER = re.compile(r"\$__timeFilter\(([^()]*(?:\([^()]*\))?[^()]*)\)")
FROM, TO = "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z"


def expand(sql: str) -> str:
    sql = TIME_FILTER.sub(lambda m: f"{m.group(1)} BETWEEN '{FROM}' AND '{TO}'", sql)
    sql = sql.replace("${symbol:sqlstring}", "'AAPL'")
    assert "$" not in sql, f"unexpanded Grafana macro or variable in: {sql}"
    return sql


def queries() -> Iterator[tuple[str, str]]:
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for var in board["templating"]["list"]:
            if var["type"] == "query":
                yield f"{path.stem}: ${var['name']}", var["query"]
        for panel in board["panels"]:
            for target in panel["targets"]:
                yield f"{path.stem}: {panel['title']}", target["rawSql"]


def test_dashboards_cover_prices_quality_and_runs() -> None:
    assert {p.stem for p in DASHBOARDS} == {"prices", "data_quality", "pipeline_runs"}
    read = {t for _, sql in queries() for t in TABLES if re.search(rf"\b{t}\b", sql)}
    assert read == TABLES


def test_every_panel_uses_the_provisioned_data_source() -> None:
    (source,) = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    assert source["jsonData"]["database"] == "warehouse"
    uids = set()
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        uids.add(board["uid"])
        assert board["panels"], path.name
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] == source["uid"], (path.name, panel["title"])
            assert panel["targets"]
            assert all(t["rawSql"].strip() for t in panel["targets"])
    assert len(uids) == len(DASHBOARDS)


def test_macro_expansion_rejects_unknown_macros() -> None:
    assert expand("WHERE $__timeFilter(a::timestamptz)") == (
        f"WHERE a::timestamptz BETWEEN '{FROM}' AND '{TO}'"
    )
    with pytest.raises(AssertionError, match="unexpanded"):
        expand("WHERE $__unixEpochFilter(t)")


@pytest.fixture
def warehouse_db(postgres_url: str) -> Iterator[str]:
    """A fresh database holding fdp's warehouse schema and a few observability rows."""
    import psycopg

    from fdp.warehouse.connect import connect
    from fdp.warehouse.migrations import migrate
    from fdp.warehouse.observability import (
        DqResult,
        PipelineRun,
        record_dq_results,
        record_pipeline_run,
    )

    name = f"fdp_grafana_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}")
    url = urlsplit(postgres_url)._replace(path=f"/{name}").geturl()
    try:
        warehouse = connect(url)
        migrate(warehouse)
        day = dt.date(2024, 6, 3)
        started = dt.datetime(2024, 6, 3, 22, tzinfo=dt.UTC)
        record_pipeline_run(
            warehouse,
            PipelineRun(
                "transform",
                day,
                "run-1",
                "success",
                started,
                rows_in=8,
                rows_out=8,
                rows_rejected=0,
                duration_s=1.5,
            ),
        )
        record_dq_results(
            warehouse,
            day,
            "simulator",
            [DqResult("expect_column_values_to_not_be_null", "close", False, 8, 1, 12.5)],
        )
        yield url
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as con:
            con.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.postgres
def test_every_dashboard_query_runs_on_the_warehouse(warehouse_db: str) -> None:
    import psycopg

    failures: list[str] = []
    rows: dict[str, int] = {}
    with psycopg.connect(warehouse_db) as con:
        for where, sql in queries():
            try:
                with con.transaction(force_rollback=True):
                    rows[where] = len(con.execute(expand(sql)).fetchall())
            except psycopg.Error as exc:
                failures.append(f"{where}: {exc}")
    assert failures == []
    assert rows["pipeline_runs: Runs"] == 1
    assert rows["data_quality: Failing expectations"] == 1
