"""infrastructure/deploy.sh --dry-run prints the whole deployment and runs none of it.

A tripwire ``aws`` and ``make`` first on the PATH record any call, so a dry run that ran a
command fails the test."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from cfnlint.decode import decode
from infra_tools import ROOT, TEMPLATES

SCRIPT = ROOT / "infrastructure" / "deploy.sh"
API_KEY = "av-key-that-must-never-print-42"


@pytest.fixture
def tripwire(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("aws", "make"):
        exe = bin_dir / name
        exe.write_text(f'#!/bin/sh\necho "{name} $*" >> "{tmp_path}/called"\nexit 1\n')
        exe.chmod(0o755)
    return tmp_path


def dry_run(tripwire: Path, *args: str) -> list[list[str]]:
    env = os.environ | {
        "PATH": f"{tripwire / 'bin'}:{os.environ['PATH']}",
        "PYTHON": sys.executable,
        "FDP_ALPHAVANTAGE_API_KEY": API_KEY,
    }
    result = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert API_KEY not in result.stdout + result.stderr
    assert not (tripwire / "called").exists(), (tripwire / "called").read_text()
    lines = result.stdout.splitlines()
    assert lines
    assert all(line.startswith("+ ") for line in lines), result.stdout
    return [shlex.split(line[2:]) for line in lines]


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def overrides(command: list[str]) -> dict[str, str]:
    start = command.index("--parameter-overrides") + 1
    return dict(arg.split("=", 1) for arg in command[start:])


def template_default(template: str, parameter: str) -> str:
    tpl, errors = decode(str(TEMPLATES / template))
    assert not errors
    return str(tpl["Parameters"][parameter]["Default"])


def test_production_dry_run_prints_every_step(tripwire: Path) -> None:
    commands = dry_run(
        tripwire, "--mode", "production", "--env", "staging", "--region", "eu-central-1"
    )
    deploys = [c for c in commands if c[:3] == ["aws", "cloudformation", "deploy"]]
    assert len(deploys) == 2
    for deploy in deploys:
        assert (ROOT / option(deploy, "--template-file")) == TEMPLATES / "production.yaml"
        assert option(deploy, "--stack-name") == "fdp-production-staging"
        assert option(deploy, "--region") == "eu-central-1"
    first, final = overrides(deploys[0]), overrides(deploys[1])
    assert first["DeployMwaa"] == "false"
    assert final["DeployMwaa"] == "true"
    tpl, _ = decode(str(TEMPLATES / "production.yaml"))
    assert set(first) | set(final) <= set(tpl["Parameters"])
    assert final["GlueScriptKey"] == template_default("production.yaml", "GlueScriptKey")

    uploads = {
        option(c, "--key"): option(c, "--body")
        for c in commands
        if c[:3] == ["aws", "s3api", "put-object"]
    }
    assert uploads == {
        "requirements.txt": "dist/mwaa/requirements.txt",
        "startup.sh": "dist/mwaa/startup.sh",
        "plugins.zip": "dist/mwaa/plugins.zip",
    }
    copies = {c[-2]: c[-1] for c in commands if c[:3] == ["aws", "s3", "cp"]}
    assert copies["src/fdp/engines/spark_job.py"].endswith("/" + final["GlueScriptKey"])
    wheel = next(src for src in copies if src.startswith("dist/wheel/"))
    assert copies[wheel].endswith("/" + final["FdpWheelKey"])
    assert any(c[:3] == ["aws", "s3", "sync"] and "dist/mwaa/dags" in c for c in commands)
    assert any(c[:3] == ["aws", "secretsmanager", "put-secret-value"] for c in commands)
    # the bundle is built before anything is uploaded
    assert commands.index(["make", "mwaa-bundle"]) < commands.index(deploys[0])


def test_lite_dry_run_ships_the_compose_stack(tripwire: Path) -> None:
    commands = dry_run(tripwire, "--mode", "lite")
    (deploy,) = [c for c in commands if c[:3] == ["aws", "cloudformation", "deploy"]]
    assert (ROOT / option(deploy, "--template-file")) == TEMPLATES / "lite.yaml"
    (tar,) = [c for c in commands if c[0] == "tar"]
    members = tar[3:]
    assert {"Dockerfile", "docker-compose.yml", "docker", "grafana", "src"} <= set(members)
    for member in members:
        assert (ROOT / member).exists(), member
    key = template_default("lite.yaml", "SourceBundleKey")
    (upload,) = [c for c in commands if c[:3] == ["aws", "s3", "cp"]]
    assert upload[-2] == option(tar, "-czf")
    assert upload[-1].endswith("/" + key)
    (ssm,) = [c for c in commands if c[:3] == ["aws", "ssm", "send-command"]]
    assert "/usr/local/bin/fdp-redeploy" in option(ssm, "--parameters")
    assert "cat > /usr/local/bin/fdp-redeploy" in (TEMPLATES / "lite.yaml").read_text()


@pytest.mark.parametrize("args", [["--mode", "mainframe"], ["--env", "qa"], ["--bogus"]])
def test_bad_usage_exits_2(args: list[str]) -> None:
    result = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run", *args], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "deploy.sh" in result.stderr
