"""The GitHub Actions workflow passes actionlint and every gate can fail."""

from __future__ import annotations

from typing import Any

import yaml
from infra_tools import ROOT, run, tool

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
