"""The indicator definitions as data: what the engines and the incremental state rely on."""

from __future__ import annotations

from fdp.indicators import EMAS, SMAS, STATE_ROWS, VOLATILITY


def test_definitions_follow_the_architecture_table() -> None:
    assert [(s.column, s.window, s.first_row) for s in SMAS] == [
        ("sma_5", 5, 5),
        ("sma_20", 20, 20),
        ("sma_50", 50, 50),
    ]
    assert [(e.column, e.first_row) for e in EMAS] == [("ema_12", 12), ("ema_26", 26)]
    assert EMAS[0].alpha == 2 / 13
    assert (VOLATILITY.window, VOLATILITY.ddof, VOLATILITY.first_row) == (20, 1, 21)


def test_state_covers_the_longest_lookback() -> None:
    assert STATE_ROWS == 49
