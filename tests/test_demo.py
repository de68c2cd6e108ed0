"""``fdp demo`` end to end on a fresh data directory, and its report in a real browser."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest
from click.testing import CliRunner

from browser import screenshot
from fdp.cli import main
from fdp.config import Settings
from fdp.demo import demo_window
from fdp.sources.symbols import preset

pytestmark = pytest.mark.slow


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
def test_demo_report_draws_candles_in_a_real_browser(
    demo_run: tuple[Settings, list[str]], tmp_path: Path
) -> None:
    """Chromium draws a symbol's page: the plot area must hold up and down candle bodies in
    their own colours (the volume bars are paler blends, the price scale is cut off), the
    moving-average lines and both colours of volume bars."""
    from PIL import Image

    settings, _ = demo_run
    page = Path(settings.path("reports", "demo", "symbols", "AAPL.html"))
    image = Image.open(screenshot(page, tmp_path / "aapl.png", (1200, 1000))).convert("RGB")
    plot = image.crop((0, 0, image.width - 120, image.height))
    counts = {rgb: n for n, rgb in plot.getcolors(maxcolors=1_000_000) or []}

    def near(target: tuple[int, int, int], tolerance: int = 12) -> int:
        return sum(
            n
            for rgb, n in counts.items()
            if all(abs(a - b) <= tolerance for a, b in zip(rgb, target, strict=True))
        )

    assert near((0x26, 0xA6, 0x9A)) > 1500, "no up (green) candle bodies"
    assert near((0xEF, 0x53, 0x50)) > 1500, "no down (red) candle bodies"
    assert near((0x29, 0x62, 0xFF), 40) > 200, "the SMA 5 line (blue) was not drawn"
    assert near((0x82, 0x50, 0xDF), 40) > 200, "the SMA 20 line (purple) was not drawn"
    assert near((157, 215, 210)) > 2000, "no up-day volume bars"
    assert near((248, 178, 176)) > 2000, "no down-day volume bars"


def test_report_command_writes_an_index_and_a_page_per_symbol(
    demo_run: tuple[Settings, list[str]], tmp_path: Path
) -> None:
    settings, _ = demo_run
    start, end = demo_window()
    target = tmp_path / "charts"
    args = ["report", "--symbols", "msft,AAPL", "--start", str(start), "--end", str(end)]
    result = CliRunner().invoke(
        main, [*args, "--output", str(target)], env={"FDP_DATA_DIR": settings.data_dir}
    )
    assert result.exit_code == 0, result.output
    unwrapped = "".join(result.output.split())  # Rich wraps a long path at the terminal width
    assert f"report:{target.joinpath('index.html').as_uri()}" in unwrapped
    assert sorted(p.name for p in (target / "symbols").iterdir()) == ["AAPL.html", "MSFT.html"]
    index = (target / "index.html").read_text()
    assert index.index('href="symbols/AAPL.html"') < index.index('href="symbols/MSFT.html"')
    assert "simulator" in index, "the batch's quality results are missing"
    # without --output the report goes under the data directory
    result = CliRunner().invoke(main, args, env={"FDP_DATA_DIR": settings.data_dir})
    assert result.exit_code == 0, result.output
    assert Path(settings.path("reports", "charts", f"{start}_{end}", "index.html")).is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--symbols", "AAPL,ZZZZ"], "no curated rows for ZZZZ"),
        (["--start", "2030-01-01", "--end", "2030-01-31"], "no curated rows between"),
        (["--start", "2024-03-01", "--end", "2024-02-01"], "after it ends"),
        (["--symbols", "<b>"], "invalid ticker"),
    ],
)
def test_report_command_refuses_unknown_symbols_and_empty_ranges(
    demo_run: tuple[Settings, list[str]], args: list[str], message: str
) -> None:
    settings, _ = demo_run
    start, end = demo_window()
    given = ["--start", str(start), "--end", str(end), *args]
    result = CliRunner().invoke(main, ["report", *given], env={"FDP_DATA_DIR": settings.data_dir})
    assert result.exit_code == 2, result.output
    assert message in result.output
