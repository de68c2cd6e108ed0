"""Headless Chromium for the report tests: a page's screenshot, and its DOM after its scripts
ran. Without Chromium the test skips loudly (fails when every test is required)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from needs import unavailable

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def _run(page: Path, profile: Path, *args: str) -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        unavailable("no chromium on the PATH (apt-get install chromium)")
    done = subprocess.run(
        [str(browser), *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.stdout


def screenshot(page: Path, shot: Path, size: tuple[int, int] = (1200, 1000)) -> Path:
    """``page`` drawn in a ``size`` window, as a PNG at ``shot``."""
    window = f"--window-size={size[0]},{size[1]}"
    _run(page, shot.with_suffix(".profile"), window, f"--screenshot={shot}")
    return shot


def dom(page: Path, profile: Path) -> str:
    """``page``'s DOM, serialised after its deferred scripts ran."""
    return _run(page, profile, "--dump-dom")
