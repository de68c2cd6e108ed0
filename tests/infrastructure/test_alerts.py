"""Grafana's provisioned alert rules: each query runs on a PostgreSQL warehouse that fdp's own
pipeline filled, stays quiet on healthy runs and fires on the failure it is for.

The failures are staged through fdp, as they happen: a bad vendor document fails the quality
gate, a row lost from the warehouse fails reconciliation, a session not loaded by 20:00 New
York time is stale, and Alpha Vantage calls counted against a small daily quota.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import orjson
import pytest
import yaml
from infra_tools import ROOT, TEMPLATES

from fdp import pipeline
from fdp.config import Settings
from fdp.errors import TerminalError, TransientError
from fdp.quality.errors import QualityGateError
from fdp.sources.landing import RawZone
from fdp.warehouse.reconcile import ReconciliationError
from vendor_server import VendorServer

RULES = ROOT / "grafana" / "provisioning" / "alerting" / "fdp.yaml"
DATASOURCES = ROOT / "grafana" / "provisioning" / "datasources" / "warehouse.yaml"
NEW_YORK = ZoneInfo("America/New_York")
SESSIONS = (dt.date(2026, 11, 18), dt.date(2026, 11, 19))
BROKEN = dt.date(2026, 11, 20)
SYMBOLS = ("AAPL", "MSFT")
EXPECTED = {
    "fdp-task-failed",
    "fdp-quality-gate-failed",
    "fdp-stale-data",
    "fdp-reconciliation-failed",
    "fdp-vendor-quota",
}


def rules() -> dict[str, dict[str, Any]]:
    (group,) = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["uid"]: rule for rule in group["rules"]}


def query_and_threshold(rule: dict[str, Any]) -> tuple[str, float]:
    """The rule's SQL and the value above which its threshold expression fires."""
    data = {d["refId"]: d for d in rule["data"]}
    condition = data[rule["condition"]]["model"]
    assert condition["type"] == "threshold"
    (check,) = condition["conditions"]
    assert check["evaluator"]["type"] == "gt"
    return data[condition["expression"]]["model"]["rawSql"], float(check["evaluator"]["params"][0])


def value_at(url: str, rule: dict[str, Any], at: dt.datetime) -> float:
    """The rule's number when Grafana evaluates it at ``at`` over its relative time range."""
    import psycopg

    sql, _ = query_and_threshold(rule)
    window = dt.timedelta(seconds=rule["data"][0]["relativeTimeRange"]["from"])
    sql = sql.replace("$__timeFrom()", f"'{(at - window).isoformat()}'")
    sql = sql.replace("$__timeTo()", f"'{at.isoformat()}'")
    assert "$" not in sql, f"unexpanded Grafana macro in {rule['uid']}: {sql}"
    with psycopg.connect(url) as con:
        (row,) = con.execute(sql).fetchall()
    return float(row[0])


def firing(url: str, at: dt.datetime, uids: set[str]) -> set[str]:
    found = rules()
    return {u for u in uids if value_at(url, found[u], at) > query_and_threshold(found[u])[1]}


def test_every_rule_reads_the_provisioned_warehouse() -> None:
    (source,) = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    found = rules()
    assert set(found) == EXPECTED
    for uid, rule in found.items():
        queries = [d for d in rule["data"] if d["datasourceUid"] != "__expr__"]
        assert [d["datasourceUid"] for d in queries] == [source["uid"]], uid
        query_and_threshold(rule)


def test_cloudwatch_alarms_count_the_errors_fdp_reports() -> None:
    """The stack's log filters match the error class that a failed task's log names
    (``fdp.orchestration.policy`` puts it first in the failure message)."""

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load((TEMPLATES / "production.yaml").read_text(), Loader=Loader)
    resources = template["Resources"].values()
    patterns = {
        r["Properties"]["MetricTransformations"][0]["MetricName"]: r["Properties"]["FilterPattern"]
        for r in resources
        if r["Type"] == "AWS::Logs::MetricFilter"
    }
    alarmed = {r["Properties"]["MetricName"] for r in resources if r["Type"].endswith("Alarm")}
    for error, metric in (
        (QualityGateError, "QualityGateFailures"),
        (ReconciliationError, "ReconciliationFailures"),
    ):
        assert patterns[metric] == f'"{error.__name__}"'
        assert metric in alarmed


@pytest.fixture
def warehouse(postgres_url: str) -> Iterator[str]:
    import psycopg

    name = f"fdp_alerts_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}")
    yield urlsplit(postgres_url)._replace(path=f"/{name}").geturl()
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _bad_document(symbol: str, day: dt.date) -> bytes:
    """A parseable bar that breaks the gate's price rules (negative prices, high < low)."""
    bar = {"1. open": "-5.0", "2. high": "1.0", "3. low": "10.0", "4. close": "-3.0"}
    bar["5. volume"] = "100"
    meta = {"2. Symbol": symbol, "3. Last Refreshed": day.isoformat()}
    return orjson.dumps({"Meta Data": meta, "Time Series (Daily)": {day.isoformat(): bar}})


def _evening(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), NEW_YORK)


@pytest.mark.postgres
@pytest.mark.slow
def test_rules_stay_quiet_on_healthy_runs_and_fire_on_each_staged_failure(
    warehouse: str, tmp_path: Path
) -> None:
    import psycopg

    settings = Settings(data_dir=str(tmp_path / "data"), warehouse_url=warehouse)
    for day in SESSIONS:
        pipeline.ingest(settings, day, source="simulator", symbols=SYMBOLS)
        pipeline.validate(settings, day, source="simulator")
        pipeline.transform(settings, day, source="simulator")
        pipeline.load(settings, day)
        pipeline.reconcile(settings, day)
    vendor = VendorServer()
    try:
        quota = Settings(
            data_dir=str(tmp_path / "data"),
            warehouse_url=warehouse,
            alphavantage_api_key="k",
            alphavantage_base_url=vendor.url,
            alphavantage_calls_per_day=2 * len(SYMBOLS),
        )
        roomy = quota.model_copy(update={"alphavantage_calls_per_day": 1000})
        pipeline.ingest(roomy, BROKEN, source="alpha_vantage", symbols=SYMBOLS)

        windowed = EXPECTED - {"fdp-stale-data"}
        assert firing(warehouse, dt.datetime.now(dt.UTC), windowed) == set()
        stale = {"fdp-stale-data"}
        for quiet in (_evening(SESSIONS[1], 21), _evening(BROKEN, 19), _evening(BROKEN, 12)):
            assert firing(warehouse, quiet, stale) == set(), quiet
        # Staged: the next session is not loaded by 20:00 New York time, nor by the weekend.
        for late in (_evening(BROKEN, 21), _evening(BROKEN + dt.timedelta(days=1), 12)):
            assert firing(warehouse, late, stale) == stale, late

        # Staged: a bad vendor document fails the gate (a failed task too).
        RawZone(settings).land("simulator", BROKEN, "BADX", _bad_document("BADX", BROKEN), rows=1)
        with pytest.raises(TerminalError):
            pipeline.validate(settings, BROKEN, source="simulator")
        assert firing(warehouse, dt.datetime.now(dt.UTC), windowed) == {
            "fdp-task-failed",
            "fdp-quality-gate-failed",
        }

        # Staged: a row lost from the warehouse fails reconciliation.
        with psycopg.connect(warehouse) as con:
            con.execute("DELETE FROM fact_stock_prices WHERE price_id = %s", ("AAPL_20261119",))
        with pytest.raises(TerminalError):
            pipeline.reconcile(settings, SESSIONS[1])
        assert "fdp-reconciliation-failed" in firing(warehouse, dt.datetime.now(dt.UTC), windowed)

        # Staged: the day's calls reach the quota (a second ingest, counted by the limiter).
        assert "fdp-vendor-quota" not in firing(warehouse, dt.datetime.now(dt.UTC), windowed)
        pipeline.ingest(quota, BROKEN, source="alpha_vantage", symbols=SYMBOLS)
        assert firing(warehouse, dt.datetime.now(dt.UTC), windowed) == windowed
        with pytest.raises(TransientError, match="daily quota"):
            pipeline.ingest(quota, BROKEN, source="alpha_vantage", symbols=SYMBOLS[:1])
    finally:
        vendor.close()
