"""The suite file: where it is, that GX builds all of it, and what its date rule accepts."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import polars as pl
import pytest

from fdp.errors import ConfigError
from fdp.quality import suite as suite_module
from fdp.quality.suite import default_suite_path, load_suite, read_rules, suite_parameters
from fdp.records import TICKER_PATTERN

REPO = Path(__file__).resolve().parents[2]
EXPECTED_RULES = 23


def test_suite_loads_with_every_expectation() -> None:
    suite = load_suite()
    assert len(suite.expectations) == EXPECTED_RULES
    assert suite.name == "stock_data_suite"


def test_repository_path_is_the_packaged_suite() -> None:
    config = REPO / "config" / "expectations" / "stock_data_suite.json"
    assert config.resolve() == default_suite_path().resolve()


def test_ticker_rule_is_the_records_pattern() -> None:
    _, rules, _ = read_rules()
    (ticker,) = [r for r in rules if r.name == "symbol_is_ticker"]
    assert ticker.kwargs["regex"] == {"$PARAMETER": "ticker_pattern"}
    assert suite_parameters()["ticker_pattern"] == TICKER_PATTERN


def _suite_with(tmp_path: Path, extra: dict[str, object]) -> Path:
    doc = json.loads(default_suite_path().read_text())
    doc["expectations"].append(extra)
    path = tmp_path / "suite.json"
    path.write_text(json.dumps(doc))
    return path


def test_expectation_gx_drops_fails_loudly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """GX only logs and drops a type it does not know; fdp must refuse the suite."""
    monkeypatch.setattr(suite_module, "_TABLE_LEVEL", {*suite_module._TABLE_LEVEL, "expect_x"})
    bad = {"type": "expect_x", "kwargs": {}, "meta": {"rule": "not_in_gx"}}
    with pytest.raises(ConfigError, match=r"built 23 of 24 expectations; dropped: not_in_gx"):
        load_suite(_suite_with(tmp_path, bad))


def test_expectation_gx_rejects_fails_as_config_error(tmp_path: Path) -> None:
    bad = {
        "type": "expect_column_values_to_be_between",
        "kwargs": {"column": "volume", "min_value": 0, "mostly": 2.0},
        "meta": {"rule": "bad_mostly"},
    }
    with pytest.raises(ConfigError, match=r"(?s)invalid expectation.*mostly"):
        load_suite(_suite_with(tmp_path, bad))


def test_unknown_expectation_type_is_refused(tmp_path: Path) -> None:
    bad = {"type": "expect_column_values_to_be_dateutil_parseable", "kwargs": {"column": "x"}}
    with pytest.raises(ConfigError, match=r"dateutil_parseable.*unknown to fdp"):
        read_rules(_suite_with(tmp_path, bad))


def _date_rule_mask(values: list[str]) -> list[bool]:
    _, rules, _ = read_rules()
    (rule,) = [r for r in rules if r.name == "timestamp_is_date"]
    frame = pl.DataFrame({"timestamp": values})
    return frame.select(rule.unexpected())["timestamp"].to_list()


def _is_real_date(text: str) -> bool:
    if len(text) != 10 or text[4] != "-" or text[7] != "-":
        return False
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return text[0] != "0"


def test_date_rule_accepts_exactly_real_dates() -> None:
    """Against Python's own calendar, over leap-year edge cases and malformed strings."""
    years = [1000, 1600, 1700, 1900, 1999, 2000, 2023, 2024, 2100, 2400, 9999]
    values = [f"{y:04d}-{m:02d}-{d:02d}" for y in years for m in range(14) for d in range(33)]
    values += ["2024-1-05", "2024-01-5", "20240105", "2024/01/05", " 2024-01-05", "2024-01-05 "]
    values += ["2024-01-05T00:00:00", "0999-01-01", "", "abcd-ef-gh", "2024-02-29x"]
    unexpected = _date_rule_mask(values)
    wrong = [v for v, bad in zip(values, unexpected, strict=True) if bad == _is_real_date(v)]
    assert wrong == []
    assert sum(not b for b in unexpected) == sum(_is_real_date(v) for v in values) > 3000


@pytest.mark.slow
def test_wheel_ships_the_suite(tmp_path: Path) -> None:
    """Build the wheel from a copy of the project and find the suite inside it."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        if (REPO / name).exists():
            shutil.copy(REPO / name, project / name)
    shutil.copytree(REPO / "src", project / "src", ignore=shutil.ignore_patterns("*.egg-info"))
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run(
        [*pip, "-w", str(tmp_path / "dist"), str(project)],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("fdp-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        shipped = zf.read("fdp/quality/stock_data_suite.json")
    assert shipped == default_suite_path().read_bytes()
