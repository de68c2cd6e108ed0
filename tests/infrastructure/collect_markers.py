"""pytest plugin for the workflow check: after collection, write every test's node id with
the names of its markers (its own, its module's, its parametrised fixtures') as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--markers-out", help="write {node id: [marker names]} here")


def pytest_collection_finish(session: pytest.Session) -> None:
    out = session.config.getoption("--markers-out")
    if out:
        marks = {
            item.nodeid: sorted({m.name for m in item.iter_markers()}) for item in session.items
        }
        Path(out).write_text(json.dumps(marks))
