"""The indicator registry: definitions as data, warm-ups derived from them, and registration
refusing what the kernel could not compute exactly."""

from __future__ import annotations

import pytest

from fdp import indicators
from fdp.errors import ConfigError
from fdp.indicators import Indicator, Smooth, col, ema, lag, rolling_max, rolling_mean


def test_builtins_follow_the_architecture_table() -> None:
    sma = {n: indicators.get(f"sma_{n}").expr for n in (5, 20, 50)}
    assert {n: (e.window, e.stat) for n, e in sma.items()} == {  # type: ignore[attr-defined]
        5: (5, "mean"),
        20: (20, "mean"),
        50: (50, "mean"),
    }
    ema_12 = indicators.get("ema_12").expr
    assert isinstance(ema_12, Smooth)
    assert (ema_12.alpha, ema_12.seed) == (2 / 13, 12)
    rsi = indicators.get("rsi_14_avg_gain").expr
    assert isinstance(rsi, Smooth)
    assert (rsi.alpha, rsi.seed) == (1 / 14, 14)
    assert indicators.get("volatility_20d").inputs == ("daily_return",)
    assert indicators.get("macd_signal").inputs == ("macd",)


def test_warm_ups_follow_from_the_expressions() -> None:
    warmup = {i.name: i.warmup for i in indicators.registry()}
    assert warmup["sma_50"] == 49
    assert warmup["daily_return"] == 1
    assert warmup["volatility_20d"] == 19  # stored daily returns on the state rows
    assert warmup["ema_26"] == 25  # the seed window, when the state holds no EMA yet
    assert warmup["rsi_14_avg_gain"] == 14  # 14 gains need 15 prices
    assert warmup["atr_14"] == 14
    assert warmup["macd_signal"] == 8
    assert indicators.STATE_ROWS == indicators.state_rows() == 49


def test_dependencies_come_with_an_indicator() -> None:
    assert indicators.with_dependencies(["macd_hist"]) == (
        "ema_12",
        "ema_26",
        "macd",
        "macd_signal",
        "macd_hist",
    )
    assert indicators.with_dependencies(["rsi_14"]) == (
        "rsi_14_avg_gain",
        "rsi_14_avg_loss",
        "rsi_14",
    )


@pytest.mark.parametrize(
    ("indicator", "message"),
    [
        (Indicator("Bad-Name", col("close")), "lower_snake_case"),
        (Indicator("close", col("close")), "taken"),
        (Indicator("symbol", col("close")), "taken"),
        (Indicator("x_1", col("nope")), "unknown column"),
        (Indicator("x_2", ema(col("close"), 5) - col("close")), "whole indicator"),
        (Indicator("sma_5", rolling_mean(col("close"), 6)), "another definition"),
    ],
)
def test_registration_refuses_what_it_cannot_compute(indicator: Indicator, message: str) -> None:
    before = indicators.registry()
    with pytest.raises(ConfigError, match=message):
        indicators.register(indicator)
    assert indicators.registry() == before


def test_bad_windows_are_refused_when_declared() -> None:
    with pytest.raises(ConfigError, match="window"):
        rolling_max(col("high"), 0)
    with pytest.raises(ConfigError, match="periods"):
        lag(col("close"), -1)


def test_registering_the_same_definition_twice_is_a_no_op() -> None:
    before = indicators.version()
    indicators.register(Indicator("sma_5", rolling_mean(col(indicators.P), 5)))
    assert indicators.version() == before
