"""``fdp ingest`` wiring: symbol parsing and the simulator branch (real simulator, local zone)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner

from fdp.cli import main
from fdp.config import Settings
from fdp.errors import ConfigError
from fdp.sources.ingest import ingest, parse_symbols
from fdp.sources.landing import RawZone

DAY = dt.date(2026, 11, 20)  # a Friday session


def test_parse_symbols_normalises_and_rejects_bad_tickers() -> None:
    assert parse_symbols(" aapl,MSFT,,aapl ,brk.b") == ["AAPL", "MSFT", "BRK.B"]
    with pytest.raises(ConfigError, match="no symbols"):
        parse_symbols(" , ")
    with pytest.raises(ConfigError, match=r"\['a b'\]"):
        parse_symbols("AAPL,a b")


def test_unknown_source_is_a_config_error(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="unknown source 'yahoo'"):
        ingest(settings, "yahoo", ["AAPL"], DAY)  # type: ignore[arg-type]


def test_simulator_ingest_lands_one_bar_per_symbol(settings: Settings) -> None:
    seen: list[str] = []
    outcomes = ingest(
        settings, "simulator", ["AAPL", "MSFT"], DAY, on_outcome=lambda o: seen.append(o.symbol)
    )

    assert [(o.symbol, o.ok, o.rows) for o in outcomes] == [("AAPL", True, 1), ("MSFT", True, 1)]
    assert seen == ["AAPL", "MSFT"]
    bars = RawZone(settings).read_batch("simulator", DAY).df
    assert sorted(zip(bars["symbol"], bars["timestamp"], strict=True)) == [
        ("AAPL", "2026-11-20"),
        ("MSFT", "2026-11-20"),
    ]
    assert outcomes[0].path is not None
    assert outcomes[0].path.endswith("ingest_date=2026-11-20/symbol=AAPL.json")


def test_cli_simulator_ingest_is_idempotent(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["ingest", "--source", "simulator", "--symbols", "IBM", "--date", str(DAY)]
    first = runner.invoke(main, args)
    raw = tmp_path / "data" / "raw"
    before = {p: p.read_bytes() for p in raw.rglob("*") if p.is_file()}
    second = runner.invoke(main, args)

    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert "IBM" in first.stdout
    assert {p: p.read_bytes() for p in raw.rglob("*") if p.is_file()} == before
