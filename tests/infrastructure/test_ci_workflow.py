"""The GitHub Actions workflow passes actionlint, every gate can fail, and every job has the
services and tools the tests it runs need, derived from those tests' pytest markers (so a job
added later is checked the same way)."""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from _pytest.mark.expression import Expression
from infra_tools import ROOT, run, tool

HERE = Path(__file__).parent

WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"


def jobs() -> dict[str, Any]:
    return dict(yaml.safe_load(WORKFLOW.read_text())["jobs"])


def commands(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_actionlint_passes() -> None:
    result = run(tool("actionlint"), "-no-color", WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Any) -> None:
    broken = tmp_path / "ci.yml"
    broken.write_text(
        WORKFLOW.read_text().replace("runs-on: ubuntu-24.04", "runs-on: [ubuntu-24.04", 1)
    )
    assert run(tool("actionlint"), "-no-color", broken).returncode != 0


def test_no_gate_is_allowed_to_fail() -> None:
    for name, job in jobs().items():
        assert "continue-on-error" not in job, name
        for step in job["steps"]:
            assert "continue-on-error" not in step, (name, step)
            assert "|| true" not in step.get("run", ""), name
            assert "|| :" not in step.get("run", ""), name


def test_every_gate_is_present() -> None:
    j = jobs()
    assert {"lint", "unit", "postgres", "spark", "airflow", "stress", "build"} <= set(j)
    lint = commands(j["lint"])
    assert "ruff check" in lint
    assert "ruff format --check" in lint
    assert "mypy" in lint
    assert "postgres" in j["postgres"]["services"]
    assert any(s.get("uses", "").startswith("actions/setup-java") for s in j["spark"]["steps"])
    assert '-m "spark' in commands(j["spark"])
    assert '-m "airflow' in commands(j["airflow"])
    assert "tests/test_stress.py" in commands(j["stress"])
    assert "python -m build" in commands(j["build"])
    assert any(
        s.get("uses", "").startswith("docker/build-push-action") for s in j["build"]["steps"]
    )
    for name in ("postgres", "spark", "airflow", "stress"):
        assert j[name]["env"]["FDP_REQUIRE_ALL"] == "1", name


# --- each job has what the tests it runs need ------------------------------------------------

Job = dict[str, Any]
Check = Callable[[Job], bool]

_VALUED = {"-m", "-k", "-W", "-p", "-c", "-o", "--deselect", "--ignore", "--durations"}
"""pytest options that take the next argument as their value."""


@dataclass(frozen=True)
class Selection:
    """The tests one pytest command line runs: paths, a marker expression, deselected ids."""

    paths: tuple[str, ...]
    marker_expr: str
    deselected: frozenset[str]
    ignored: tuple[str, ...]

    @classmethod
    def parse(cls, argv: list[str]) -> Selection:
        paths, ignored, deselected, expr = [], [], set(), ""
        args = iter(argv)
        for arg in args:
            name, eq, inline = arg.partition("=")
            value = inline if eq else (next(args) if arg in _VALUED else "")
            if arg.startswith("-"):
                assert name != "-k", f"-k in CI is not checked here: use markers ({argv})"
                if name == "-m":
                    expr = value
                elif name == "--deselect":
                    deselected.add(value)
                elif name == "--ignore":
                    ignored.append(value.rstrip("/"))
            else:
                paths.append(arg.rstrip("/"))
        return cls(tuple(paths or TESTPATHS), expr, frozenset(deselected), tuple(ignored))

    def runs(self, nodeid: str, markers: set[str]) -> bool:
        def under(node: str, path: str) -> bool:
            return node == path or node.startswith((f"{path}/", f"{path}::"))

        if nodeid in self.deselected or any(under(nodeid, p) for p in self.ignored):
            return False
        if not any(under(nodeid, p) for p in self.paths):
            return False
        return not self.marker_expr or Expression.compile(self.marker_expr).evaluate(
            lambda name: name in markers
        )


TESTPATHS = tuple(
    tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"][
        "testpaths"
    ]
)


def pytest_argvs(command: str) -> Iterator[list[str]]:
    """The pytest argument lists a shell command runs: directly, or through a make target
    (expanded with ``make -n``, which prints the recipe without running it)."""
    for line in command.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if words[0] == "make":
            targets = [w for w in words[1:] if "=" not in w and not w.startswith("-")]
            recipe = run("make", "-n", "-s", *targets).stdout
            yield from pytest_argvs(recipe)
            continue
        for i, word in enumerate(words):
            if Path(word).name == "pytest" or words[i - 1 : i + 1] == ["-m", "pytest"]:
                yield words[i + 1 :]
                break


def selections(job: Job) -> list[Selection]:
    return [
        Selection.parse(argv) for step in job["steps"] for argv in pytest_argvs(step.get("run", ""))
    ]


def has_postgres(job: Job) -> bool:
    """A PostgreSQL service published on 5432, where the tests look (FDP_TEST_POSTGRES_URL)."""
    services = job.get("services", {}).values()
    published = any(
        str(s.get("image", "")).startswith("postgres") and "5432:5432" in s.get("ports", [])
        for s in services
    )
    url = job.get("env", {}).get("FDP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/")
    return published and "@127.0.0.1:5432/" in url


def has_java(job: Job) -> bool:
    return any(
        s.get("uses", "").startswith("actions/setup-java")
        and str(s.get("with", {}).get("java-version")) == "17"
        for s in job["steps"]
    )


def has_chromium(job: Job) -> bool:
    return any(re.search(r"install\b.*\bchromium\b", s.get("run", "")) for s in job["steps"])


NEEDS: dict[str, tuple[str, Check]] = {
    "postgres": ("a PostgreSQL service", has_postgres),
    "spark": ("Java 17", has_java),
    "cluster": ("Java 17", has_java),
    "connect": ("Java 17", has_java),
    "chromium": ("Chromium", has_chromium),
}
"""Marker -> what a job running a test with it must provide. A marker not listed needs
nothing beyond the installed extras."""


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """Every test of the suite with its markers, from pytest's own collection."""
    out = tmp_path_factory.mktemp("markers") / "markers.json"
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join([str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])])
    }
    done = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "--collect-only", "-q", "--no-cov"),
            *("-p", "no:cacheprovider", "-p", "collect_markers", "--markers-out", str(out)),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return {node: set(marks) for node, marks in json.loads(out.read_text()).items()}


def missing_needs(job: Job, tests: dict[str, set[str]]) -> list[str]:
    """What ``job`` lacks for the tests it runs (``tests``: node id -> markers)."""
    chosen = selections(job)
    markers = {
        m
        for node, marks in tests.items()
        if any(s.runs(node, marks) for s in chosen)
        for m in marks
    }
    problems = [
        f"lacks {what} for @{m}" for m, (what, ok) in NEEDS.items() if m in markers and not ok(job)
    ]
    if chosen and job.get("env", {}).get("FDP_REQUIRE_ALL") != "1":
        problems.append("runs tests without FDP_REQUIRE_ALL=1 (a missing service would skip)")
    return problems


def test_every_job_has_what_its_tests_markers_need(collected: dict[str, set[str]]) -> None:
    problems = {name: missing_needs(job, collected) for name, job in jobs().items()}
    assert {name: p for name, p in problems.items() if p} == {}


def test_every_test_runs_in_some_job_and_every_test_job_runs_tests(
    collected: dict[str, set[str]],
) -> None:
    chosen = {name: selections(job) for name, job in jobs().items()}
    for name, found in chosen.items():
        if found:
            assert any(s.runs(n, m) for s in found for n, m in collected.items()), name
    unrun = [
        node
        for node, marks in collected.items()
        if not any(s.runs(node, marks) for found in chosen.values() for s in found)
    ]
    assert unrun == []


def test_spark_35_runs_in_ci_as_make_spark35() -> None:
    (spark35,) = [name for name, job in jobs().items() if "make spark35" in commands(job)]
    (selection,) = selections(jobs()[spark35])
    assert selection.marker_expr == "spark and not connect"
    assert set(selection.paths) == {"tests/engines", "tests/quality"}


def test_the_needs_check_catches_a_job_without_its_service(collected: dict[str, set[str]]) -> None:
    j = jobs()
    airflow = copy.deepcopy(j["airflow"])
    del airflow["services"]
    spark35 = copy.deepcopy(next(job for job in j.values() if "make spark35" in commands(job)))
    spark35["steps"] = [s for s in spark35["steps"] if "setup-java" not in s.get("uses", "")]
    unit = copy.deepcopy(j["unit"])
    unit["steps"] = [s for s in unit["steps"] if "chromium" not in s.get("run", "")]
    del unit["env"]
    assert missing_needs(airflow, collected) == ["lacks a PostgreSQL service for @postgres"]
    assert missing_needs(spark35, collected) == [
        "lacks Java 17 for @spark",
        "lacks Java 17 for @cluster",
    ]
    assert missing_needs(unit, collected) == [
        "lacks Chromium for @chromium",
        "runs tests without FDP_REQUIRE_ALL=1 (a missing service would skip)",
    ]


def test_selection_reads_pytest_command_lines() -> None:
    s = Selection.parse(["tests/a", "-m", "spark and not connect", "--no-cov", "-W", "x:y"])
    assert s.runs("tests/a/test_x.py::t", {"spark"})
    assert not s.runs("tests/a/test_x.py::t", {"spark", "connect"})
    assert not s.runs("tests/b/test_x.py::t", {"spark"})
    assert not s.runs("tests/ab/test_x.py::t", {"spark"})
    d = Selection.parse(["--deselect=tests/a.py::t", "tests/a.py"])
    assert not d.runs("tests/a.py::t", set())
    assert d.runs("tests/a.py::u", set())
