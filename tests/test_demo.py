"""``fdp demo`` end to end on a fresh data directory, and its report in a real browser."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import duckdb
import polars as pl
import pytest
from click.testing import CliRunner

from fdp.cli import main
from fdp.config import Settings
from fdp.demo import demo_window
from fdp.sources.symbols import preset
from needs import unavailable

pytestmark = pytest.mark.slow

CHROMIUM_FLAGS = (
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


def _warehouse_rows(settings: Settings) -> pl.DataFrame:
    path = settings.warehouse_url.removeprefix("duckdb:///")
    with duckdb.connect(path, read_only=True) as con:
        table = con.sql("SELECT * FROM fact_stock_prices ORDER BY symbol, trade_date").arrow()
    return pl.DataFrame(table)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, list[str]]:
    """Run ``fdp demo`` twice on one fresh data directory; keep both outputs."""
    data = tmp_path_factory.mktemp("demo") / "data"
    runner = CliRunner()
    outputs = []
    for _ in range(2):
        result = runner.invoke(main, ["demo"], env={"FDP_DATA_DIR": str(data)})
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    return Settings(data_dir=str(data)), outputs


def test_demo_prints_the_summary_and_the_report_path(
    demo_run: tuple[Settings, list[str]],
) -> None:
    _, outputs = demo_run
    out = outputs[0]
    for symbol in preset("demo").symbols:
        assert symbol in out
    for stage in ("ingest", "validate", "transform", "load", "reconcile"):
        assert stage in out
    assert "report: " in out
    report = out.split("report: ")[1].split()[0]
    assert Path(report.removeprefix("file://")).is_file()


def test_demo_twice_gives_the_same_warehouse_rows(demo_run: tuple[Settings, list[str]]) -> None:
    settings, _ = demo_run
    rows = _warehouse_rows(settings)
    start, end = demo_window()
    symbols = preset("demo").symbols
    assert rows.height == len(symbols) * preset("demo").sessions
    assert rows["trade_date"].min() == start
    assert rows["trade_date"].max() == end
    assert rows.select(pl.struct("symbol", "trade_date").is_unique().all()).item()
    # a third run, in process, leaves every row exactly as it was
    result = CliRunner().invoke(main, ["demo"], env={"FDP_DATA_DIR": settings.data_dir})
    assert result.exit_code == 0, result.output
    assert _warehouse_rows(settings).equals(rows)


@pytest.mark.chromium
def test_demo_report_renders_its_charts_in_a_real_browser(
    demo_run: tuple[Settings, list[str]], tmp_path: Path
) -> None:
    """Chromium draws the page; the screenshot must hold the price and moving-average lines."""
    from PIL import Image

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        unavailable("no chromium on the PATH (apt-get install chromium)")
    settings, _ = demo_run
    report = Path(settings.path("reports", "demo", "index.html"))
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            str(browser),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1000,2400",
            f"--screenshot={shot}",
            report.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    image = Image.open(shot).convert("RGB")
    colors = image.getcolors(maxcolors=1_000_000) or []
    counts = {rgb: n for n, rgb in colors}

    def near(target: tuple[int, int, int]) -> int:
        return sum(
            n
            for rgb, n in counts.items()
            if all(abs(a - b) <= 40 for a, b in zip(rgb, target, strict=True))
        )

    assert near((0x09, 0x69, 0xDA)) > 300, "the SMA-20 line (blue) was not drawn"
    assert near((0x82, 0x50, 0xDF)) > 100, "the SMA-50 line (purple) was not drawn"
    assert near((0x57, 0x60, 0x6A)) > 2000, "the volume bars were not drawn"
