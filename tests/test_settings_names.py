"""One list of settings: every ``FDP_*`` name any file of the project sets or documents (the
stacks, the MWAA bundle and its startup.sh, compose, the DAG, the docs, CI, the sources and
the tests) is a ``Settings`` field or one of the few documented test-tooling names, and an
unknown ``FDP_*`` variable is refused, naming it."""

from __future__ import annotations

import io
import re
import subprocess
import tokenize
from pathlib import Path

import pytest
from click.testing import CliRunner

from fdp.cli import main
from fdp.config import NOT_SETTINGS, Settings, setting_names, unknown_names

ROOT = Path(__file__).resolve().parents[1]
NAME = re.compile(r"\bFDP_[A-Z0-9_]*[A-Z0-9]\b")
AIRFLOW_OPTION = re.compile(r"^\s*fdp\.([a-z0-9_]+)\s*:", re.M)
"""MWAA's custom options ``fdp.x``: startup.sh exports each as ``FDP_X``."""
TYPOS_ON_PURPOSE = {"tests/test_settings_names.py", "tests/infrastructure/test_stack_agrees.py"}
"""Files that spell unknown names on purpose (tests that they are refused)."""


def tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    return [ROOT / p for p in listed.split("\0") if p and p not in TYPOS_ON_PURPOSE]


def python_strings(text: str) -> str:
    """The string literals of a Python file: names in code (``FDP_SRC = ...``) are not
    environment variables; names in strings and docstrings are."""
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    kinds = {tokenize.STRING, getattr(tokenize, "FSTRING_MIDDLE", tokenize.STRING)}
    return "\n".join(t.string for t in tokens if t.type in kinds)


def names_in(path: Path) -> set[str]:
    try:
        text = path.read_text()
    except (UnicodeDecodeError, FileNotFoundError):
        return set()
    if path.suffix == ".py":
        text = python_strings(text)
    found = set(NAME.findall(text))
    if path.suffix in (".yaml", ".yml"):
        found |= {f"FDP_{o.upper()}" for o in AIRFLOW_OPTION.findall(text)}
    return found


def project_names() -> dict[str, set[str]]:
    """Each FDP_* name of the project, with the files that hold it."""
    where: dict[str, set[str]] = {}
    for path in tracked_files():
        for name in names_in(path):
            where.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return where


def test_every_fdp_name_in_the_project_is_a_setting() -> None:
    where = project_names()
    known = setting_names() | NOT_SETTINGS
    unknown = {name: sorted(files) for name, files in where.items() if name not in known}
    assert unknown == {}
    # the scan sees the deployment's files, not only the Python ones
    assert {"infrastructure/cloudformation/production.yaml"} <= where["FDP_WAREHOUSE_WORKGROUP"]
    assert "docker-compose.yml" in where["FDP_SPARK_MASTER"]
    assert ".ci/run" in where["FDP_REQUIRE_ALL"]


def test_the_deployment_names_are_settings() -> None:
    """What the stack exports and the bundle's startup.sh turns into FDP_* names."""
    template = (ROOT / "infrastructure/cloudformation/production.yaml").read_text()
    options = {f"FDP_{o.upper()}" for o in AIRFLOW_OPTION.findall(template)}
    assert {"FDP_WAREHOUSE_SECRET_ARN", "FDP_WAREHOUSE_WORKGROUP", "FDP_GLUE_JOB_NAME"} <= options
    assert options <= setting_names()


def test_the_scan_finds_a_name_that_is_not_a_setting(tmp_path: Path) -> None:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text("services:\n  a:\n    environment:\n      FDP_DATADIR: /data\n")
    stack = tmp_path / "stack.yaml"
    stack.write_text("Options:\n  fdp.glue_job: x\n")
    code = tmp_path / "x.py"
    code.write_text('FDP_SRC = 1\nenv = {"FDP_ENGIN": "spark"}\n')
    assert names_in(compose) == {"FDP_DATADIR"}
    assert names_in(stack) == {"FDP_GLUE_JOB"}
    assert names_in(code) == {"FDP_ENGIN"}
    assert not {"FDP_DATADIR", "FDP_GLUE_JOB", "FDP_ENGIN"} & setting_names()


@pytest.mark.parametrize(
    ("variable", "hint"),
    [
        ("FDP_DATADIR", "did you mean FDP_DATA_DIR?"),
        ("FDP_WAREHOUSE_SECRET", "did you mean FDP_WAREHOUSE_SECRET_ARN?"),
        ("fdp_engin", "did you mean FDP_ENGINE?"),
        ("FDP_NOTHING_LIKE_IT", "every FDP_* variable must be a setting"),
    ],
)
def test_an_unknown_fdp_variable_is_refused_naming_it(
    variable: str, hint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, "spark")
    with pytest.raises(ValueError, match=f"unknown setting {variable}") as refused:
        Settings()
    assert hint in str(refused.value)


def test_the_cli_reports_an_unknown_variable_as_a_usage_error() -> None:
    result = CliRunner().invoke(
        main, ["validate", "--date", "2024-01-02"], env={"FDP_WAREHOUSE_URI": "x"}
    )
    assert result.exit_code == 2, result.output
    assert "FDP_WAREHOUSE_URI" in result.output
    assert "did you mean FDP_WAREHOUSE_URL?" in result.output


def test_test_tooling_names_and_other_prefixes_are_not_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in NOT_SETTINGS:
        monkeypatch.setenv(name, "1")
    monkeypatch.setenv("FDPX_ANYTHING", "1")
    monkeypatch.setenv("MY_FDP_THING", "1")
    Settings()
    assert unknown_names(["FDP_DATA_DIR", "PATH", *NOT_SETTINGS]) == []
