"""The gate is a precondition of the transform, whichever entry point runs it and in whatever
order the stages are typed: exactly the validated bytes go in, a failed batch never does
unless an override says why (and the override is recorded)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import polars as pl
import pytest
from click.testing import CliRunner
from quality_bars import INGEST, clean_frame, land_batch, set_value

from fdp import lake, pipeline
from fdp.cli import main
from fdp.config import Settings
from fdp.quality import GateRefusedError, QualityGateError
from fdp.quality.gate import Gate
from fdp.quality.report import load_report
from fdp.rejected import read_rejected
from fdp.sources.landing import RawZone
from fdp.transform import transform

SYMBOLS = ("AAA", "BBB", "CCC", "DDD")


def _clean() -> pl.DataFrame:
    return clean_frame(SYMBOLS, end=dt.date(2024, 2, 29))


def _failing() -> pl.DataFrame:
    """A batch whose high < low on 5% of its rows: beyond the rule's ``mostly`` of 0.99."""
    df = _clean()
    return set_value(df, list(range(0, df.height, 20)), high=1.0)


def _runs(settings: Settings) -> dict[str, tuple[str, dict[str, object]]]:
    """``pipeline_runs`` by stage: (status, details)."""
    path = settings.warehouse_url.removeprefix("duckdb:///")
    with duckdb.connect("/" + path.lstrip("/"), read_only=True) as con:
        rows = con.execute("SELECT stage, status, details FROM pipeline_runs").fetchall()
    return {stage: (status, json.loads(details or "{}")) for stage, status, details in rows}


def _lake_files(settings: Settings) -> list[Path]:
    return sorted((Path(settings.data_dir) / "curated").rglob("*.parquet"))


def test_an_unvalidated_batch_is_validated_first_and_both_runs_are_recorded(
    settings: Settings,
) -> None:
    land_batch(settings, set_value(_clean(), [7], high=1.0))
    result = pipeline.transform(settings, INGEST)
    report = load_report(settings, "simulator", INGEST)
    assert report is not None
    assert report.success
    assert report.fingerprint == RawZone(settings).read("simulator", INGEST).fingerprint
    runs = _runs(settings)
    assert runs["validate"][0] == runs["transform"][0] == "success"
    assert runs["transform"][1]["source"] == "simulator"
    # the tolerated bad row stayed out of the lake
    assert result.rows_out == _clean().height - 1
    assert lake.scan(settings).select(pl.len()).collect().item() == _clean().height - 1


def test_a_failed_gate_refuses_the_transform_naming_its_report(settings: Settings) -> None:
    land_batch(settings, _failing())
    with pytest.raises(QualityGateError):
        pipeline.validate(settings, INGEST)
    with pytest.raises(GateRefusedError, match="failed its quality gate") as refused:
        pipeline.transform(settings, INGEST)
    assert "validation.html" in (refused.value.hint or "")
    assert "--override-gate" in (refused.value.hint or "")
    assert not _lake_files(settings)
    status, details = _runs(settings)["transform"]
    assert status == "failed"
    assert details["error"]["type"] == "GateRefusedError"  # type: ignore[index]
    cli = CliRunner().invoke(main, ["transform", "--date", INGEST.isoformat()])
    assert cli.exit_code == 1
    assert "failed its quality gate" in cli.stderr
    assert "hint:" in cli.stderr
    assert not _lake_files(settings)


def test_an_override_is_explicit_and_recorded(settings: Settings) -> None:
    land_batch(settings, _failing())
    cli = CliRunner().invoke(
        main,
        ["transform", "--date", INGEST.isoformat(), "--override-gate", "vendor confirmed it"],
    )
    assert cli.exit_code == 0, cli.output
    runs = _runs(settings)
    assert runs["validate"][0] == "failed"
    assert runs["transform"][0] == "success"
    assert runs["transform"][1]["gate_overridden"] == "vendor confirmed it"
    # rows the gate rejected stay out even so
    rejected = read_rejected(settings, INGEST, "quality")
    assert rejected.height == len(range(0, _clean().height, 20))
    stored = lake.scan(settings).select(pl.len()).collect().item()
    assert stored == _clean().height - rejected.height


def test_a_batch_changed_after_its_validation_is_validated_again(settings: Settings) -> None:
    land_batch(settings, _clean())
    pipeline.validate(settings, INGEST)
    land_batch(settings, _failing())  # the same object, other bytes
    with pytest.raises(QualityGateError):
        pipeline.transform(settings, INGEST)
    assert not _lake_files(settings)
    report = load_report(settings, "simulator", INGEST)
    assert report is not None
    assert not report.success


def test_rejected_rows_removed_after_validation_cannot_sneak_in(settings: Settings) -> None:
    land_batch(settings, set_value(_clean(), [3], high=1.0))
    pipeline.validate(settings, INGEST)
    store = Path(settings.data_dir, "rejected", "stage=quality")
    for path in store.rglob("rejected.parquet"):
        path.unlink()
    pipeline.transform(settings, INGEST)
    assert read_rejected(settings, INGEST, "quality").height == 1
    high = lake.scan(settings).select(pl.col("high").min()).collect().item()
    assert high > 1.0, "the row the gate rejected reached the lake"


def test_the_transform_stage_itself_refuses_a_batch_it_cannot_validate(
    settings: Settings,
) -> None:
    land_batch(settings, _clean())
    with pytest.raises(GateRefusedError, match="no validation"):
        transform(settings, INGEST, gate=Gate(settings, "simulator", INGEST))
    assert not _lake_files(settings)


def test_stage_commands_typed_alone_record_their_runs(settings: Settings) -> None:
    land_batch(settings, _clean())
    runner = CliRunner()
    for args in (["transform"], ["load"]):
        result = runner.invoke(main, [*args, "--date", INGEST.isoformat()])
        assert result.exit_code == 0, result.output
    runs = _runs(settings)
    assert {stage: status for stage, (status, _) in runs.items()} == {
        "validate": "success",
        "transform": "success",
        "load": "success",
    }
    path = settings.warehouse_url.removeprefix("duckdb://")
    with duckdb.connect(path, read_only=True) as con:
        rules = con.execute("SELECT count(*) FROM dq_results").fetchone()
    assert rules is not None
    assert rules[0] > 0


def test_the_source_defaults_to_the_only_one_with_a_batch(settings: Settings) -> None:
    land_batch(settings, _clean(), source="alpha_vantage")
    runner = CliRunner()
    wrong = runner.invoke(
        main, ["transform", "--date", INGEST.isoformat(), "--source", "simulator"]
    )
    assert wrong.exit_code == 2
    assert "no raw batch for source=simulator" in wrong.stderr
    assert "alpha_vantage" in wrong.stderr
    chosen = runner.invoke(main, ["transform", "--date", INGEST.isoformat()])
    assert chosen.exit_code == 0, chosen.output
    assert _runs(settings)["transform"][1]["source"] == "alpha_vantage"
    land_batch(settings, _clean(), source="simulator")
    both = runner.invoke(main, ["validate", "--date", INGEST.isoformat()])
    assert both.exit_code == 2
    assert "several sources" in both.stderr
    assert "alpha_vantage, simulator" in both.stderr or "simulator, alpha_vantage" in both.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["transform", "--start", "2024-03-05", "--end", "2024-03-01"],
        ["load", "--start", "2024-03-05", "--end", "2024-03-01"],
        ["backfill", "--start", "2024-03-05", "--end", "2024-03-01"],
        ["transform", "--date", "9999-12-31"],
        ["load", "--start", "2024-01-01", "--end", "9999-12-31"],
        ["backfill", "--start", "2024-01-01", "--end", "9999-12-31"],
        ["transform", "--date", "2024-02-30"],
        ["transform", "--date", "2024-03-01", "--start", "2024-03-01"],
    ],
)
def test_bad_dates_and_ranges_exit_2_with_one_line(settings: Settings, args: list[str]) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert len([line for line in result.stderr.splitlines() if "rror" in line]) == 1
    assert not Path(settings.data_dir).exists() or not any(Path(settings.data_dir).rglob("*"))
