"""``fdp generate`` through click: success output, and every bad input exits 2 writing nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from fdp.cli import main


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_generate_lands_parquet_and_prints_a_summary(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["generate", "--symbols", "AAPL,ZZZ", "--days", "5", "--format", "parquet"]
    )
    assert result.exit_code == 0, result.output
    assert "AAPL" in result.output
    assert "rows 10" in result.output
    parts = list((tmp_path / "data" / "raw" / "source=simulator").rglob("part-*.parquet"))
    assert len(parts) == 1
    assert parts[0].parent.name == "ingest_date=2024-01-08"


def test_generate_exports_csv(tmp_path: Path) -> None:
    out = tmp_path / "bars.csv"
    args = ["generate", "--preset", "small", "--format", "csv", "--output", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert len(out.read_text().splitlines()) == 1 + 3 * 21
    assert not _files(tmp_path / "data")


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--preset", "huge"], "'huge'"),
        (["--days", "0"], "0"),
        (["--days", "-3"], "-3"),
        (["--symbols", "../x"], "'../x'"),
        (["--symbols", "AAPL,bad ticker"], "'bad ticker'"),
        (["--regime", "sideways"], "'sideways'"),
        (["--format", "xml"], "'xml'"),
        (["--format", "csv"], "--output"),
        (["--correlation", "full"], "'full'"),
        (["--params", "PARAMS:negative_sigma"], "-0.2"),
        (["--params", "PARAMS:malformed"], "params.yaml"),
        (["--params", "PARAMS:unknown_field"], "volatility"),
        (["--params", "PARAMS:not_psd"], "positive"),
        (["--params", "missing.yaml"], "missing.yaml"),
        (["--start", "1980-01-02"], "1980-01-02"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    tmp_path: Path, args: list[str], named: str
) -> None:
    contents = {
        "negative_sigma": "symbols:\n  AAPL: {sigma: -0.2}\n",
        "malformed": "symbols: [AAPL: {sigma: 0.2\n",
        "unknown_field": "symbols:\n  AAPL: {volatility: 0.2}\n",
        "not_psd": (
            "symbols: {A: {}, B: {}, C: {}}\n"
            "correlation:\n  symbols: [A, B, C]\n"
            "  matrix: [[1, 0.9, -0.9], [0.9, 1, 0.9], [-0.9, 0.9, 1]]\n"
        ),
    }
    params = tmp_path / "params.yaml"
    args = list(args)
    for i, arg in enumerate(args):
        if arg.startswith("PARAMS:"):
            params.write_text(contents[arg.removeprefix("PARAMS:")])
            args[i] = str(params)
    if "missing.yaml" in args:
        args[args.index("missing.yaml")] = str(tmp_path / "missing.yaml")
    result = CliRunner().invoke(main, ["generate", *args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    assert named in lines[0]
    assert not _files(tmp_path / "data")
