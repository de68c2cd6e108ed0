"""The gate as a stage: raw zone in, reports and rejected rows out, one error on failure."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from quality_bars import INGEST, clean_frame, land_batch, set_value

from fdp.cli import main
from fdp.config import Settings
from fdp.quality import QualityGateError, run_gate
from fdp.rejected import read_rejected

SYMBOLS = ("AAA", "BBB", "CCC", "DDD")


def _big() -> pl.DataFrame:
    return clean_frame(SYMBOLS, end=dt.date(2024, 4, 30))


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).parts[0] for p in root.rglob("*") if p.is_file()}


def test_passing_gate_writes_reports_and_rejects_tolerated_rows(settings: Settings) -> None:
    land_batch(settings, set_value(_big(), [5], high=1.0))
    report = run_gate(settings, "simulator", INGEST)
    assert report.success
    assert report.rejected_count == 1
    rejected = read_rejected(settings, INGEST, "quality")
    assert rejected.select("symbol", "timestamp", "stage").rows() == [
        ("AAA", "2024-01-09", "quality")
    ]
    assert set(rejected["rule"][0].split(";")) == {"high_ge_low", "open_le_high", "close_le_high"}
    root = Path(settings.data_dir) / "reports/validation/source=simulator/ingest_date=2024-05-01"
    doc = json.loads((root / "validation.json").read_text())
    assert doc["success"] is True
    assert len(doc["expectations"]) == 24  # the suite's 23 and fdp's suspected_split
    row = next(e for e in doc["expectations"] if e["rule"] == "high_ge_low")
    assert (row["unexpected_count"], row["failing_keys"]) == (1, [["AAA", "2024-01-09"]])
    assert "PASSED" in (root / "validation.html").read_text()
    assert report.html_url is not None
    assert report.html_url.endswith("validation.html")


def test_failed_gate_writes_only_reports_and_rejected(settings: Settings) -> None:
    df = set_value(_big(), [3, 4, 5, 6], low=-5.0)
    land_batch(settings, df.filter(pl.int_range(pl.len()) != 10))
    with pytest.raises(QualityGateError) as info:
        run_gate(settings, "simulator", INGEST)
    message = str(info.value)
    assert "2 of 24 rules failed" in message
    assert "low_in_range [low in [0, 1e6]]: 4 unexpected" in message
    assert "AAA 2024-01-05, AAA 2024-01-08, AAA 2024-01-09, AAA 2024-01-10" in message
    assert "sessions_complete" in message
    assert "AAA 2024-01-17" in message
    assert "validation.html" in message
    assert _tree(Path(settings.data_dir)) == {"raw", "rejected", "reports"}
    assert read_rejected(settings, INGEST, "quality").height == 4
    assert not info.value.report.success


def test_rerun_replaces_own_rows_and_keeps_other_sources(settings: Settings) -> None:
    land_batch(settings, set_value(_big(), [5], volume=-1), source="alpha_vantage")
    land_batch(settings, set_value(_big(), [6], volume=-1))
    run_gate(settings, "alpha_vantage", INGEST)
    run_gate(settings, "simulator", INGEST)
    first = read_rejected(settings, INGEST, "quality").sort("source_file")
    run_gate(settings, "simulator", INGEST)
    again = read_rejected(settings, INGEST, "quality").sort("source_file")
    assert first.equals(again)
    assert again.height == 2
    assert again["source_file"].str.contains("source=alpha_vantage").sum() == 1


def test_cli_exit_status(settings: Settings) -> None:
    runner = CliRunner()
    missing = runner.invoke(main, ["validate", "--date", "2024-05-01"])
    assert missing.exit_code == 2
    assert "no raw batch for ingest_date=2024-05-01" in missing.output
    land_batch(settings, _big())
    ok = runner.invoke(main, ["validate", "--date", "2024-05-01", "--source", "simulator"])
    assert ok.exit_code == 0, ok.output
    assert "PASSED: 24/24 rules" in ok.output
    assert "validation.html" in ok.output
    bad = runner.invoke(main, ["validate", "--date", "2024-05-01", "--source", "nope"])
    assert bad.exit_code == 2
    no_date = runner.invoke(main, ["validate", "--date", "yesterday"])
    assert no_date.exit_code == 2
