"""What a test does when a real service it needs is missing: skip loudly, or fail in CI."""

from __future__ import annotations

import os

import pytest

REQUIRE_ALL = os.environ.get("FDP_REQUIRE_ALL") == "1"


def unavailable(reason: str) -> None:
    """Skip the test, or fail it when every integration test is required (FDP_REQUIRE_ALL=1)."""
    if REQUIRE_ALL:
        pytest.fail(f"FDP_REQUIRE_ALL=1 but {reason}", pytrace=False)
    pytest.skip(f"SKIPPED LOUDLY: {reason}")
