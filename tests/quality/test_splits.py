"""Suspected splits: caught when planted at every common ratio, silent on real S&P 500 data
and on random walks, cleared by a split field or a declared action, and held back by the gate
against the lake's last stored bar when the batch holds one day."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest

from bars import land, random_bars
from fdp import actions, lake, pipeline
from fdp.calendar import sessions
from fdp.config import Settings
from fdp.quality.errors import GateRefusedError, QualityGateError
from fdp.quality.splits import COMMON, PRICE_TOLERANCE, suspected
from fdp.rejected import read_rejected

NO_PREVIOUS = pl.DataFrame(
    schema={"symbol": pl.String, "trade_date": pl.Date, "close": pl.Float64, "volume": pl.Int64}
)
NO_ACTIONS = pl.DataFrame(schema=actions.SCHEMA)
DAYS = sessions(dt.date(2015, 1, 2), dt.date(2022, 12, 30))


def _walks(symbols: int, *, daily_vol: float, seed: int) -> pl.DataFrame:
    """Random walks with the given daily volatility, and volume whose log is AR(1)
    (persistence 0.7, shocks of sd 0.3: one day's volume moves about 33% in log terms, as a
    listed stock's does), as batch rows."""
    rng = np.random.default_rng(seed)
    n = len(DAYS)
    stamps = [d.isoformat() for d in DAYS]
    frames = []
    for k in range(symbols):
        shocks = rng.normal(0, 0.3, n)
        level = np.zeros(n)
        for t in range(1, n):
            level[t] = 0.7 * level[t - 1] + shocks[t]
        frames.append(
            pl.DataFrame(
                {
                    "symbol": f"S{k}",
                    "timestamp": stamps,
                    "close": 50 * np.exp(np.cumsum(rng.normal(0, daily_vol, n))),
                    "volume": np.exp(13 + level).astype(np.int64),
                    "split_coefficient": 1.0,
                }
            )
        )
    return pl.concat(frames)


def _plant(rows: pl.DataFrame, day: int, coefficient: float, *, field: float = 1.0) -> pl.DataFrame:
    """A ``coefficient`` split on the ``day``-th bar of every symbol: prices divided and
    volume multiplied from that bar on; its split field set to ``field``."""
    index = pl.int_range(pl.len()).over("symbol")
    after = index >= day
    return rows.with_columns(
        pl.when(after).then(pl.col("close") / coefficient).otherwise("close").alias("close"),
        pl.when(after)
        .then((pl.col("volume") * coefficient).round().cast(pl.Int64))
        .otherwise("volume")
        .alias("volume"),
        pl.when(index == day).then(field).otherwise("split_coefficient").alias("split_coefficient"),
    )


def test_real_sp500_raises_no_alarm() -> None:
    """Twenty years of the S&P 500 (2008's -9% days included) hold no suspected split."""
    from arch.data import sp500

    data = sp500.load()
    rows = pl.DataFrame(
        {
            "symbol": "SPX",
            "timestamp": [d.strftime("%Y-%m-%d") for d in data.index],
            "close": data["Close"].to_numpy(),
            "volume": data["Volume"].to_numpy().astype(np.int64),
            "split_coefficient": 1.0,
        }
    )
    assert rows.height > 5000
    assert suspected(rows, NO_PREVIOUS, NO_ACTIONS).is_empty()
    # The nearest any day came to a split ratio, in log terms: far outside the tolerance.
    jumps = np.abs(np.diff(np.log(data["Close"].to_numpy())))
    nearest = min(abs(abs(j) - abs(math.log(c))) for j in jumps for c in COMMON if c > 1)
    assert nearest > 3 * PRICE_TOLERANCE


@pytest.mark.parametrize("daily_vol", [0.02, 0.05])
def test_random_walks_raise_no_alarm(daily_vol: float) -> None:
    """100 symbols x 8 years of random walks, at a typical and a wild stock's volatility."""
    rows = _walks(100, daily_vol=daily_vol, seed=int(daily_vol * 1000))
    assert suspected(rows, NO_PREVIOUS, NO_ACTIONS).is_empty()


@pytest.mark.parametrize("coefficient", COMMON, ids=actions.ratio_text)
def test_a_planted_split_of_every_ratio_is_caught(coefficient: float) -> None:
    """Every planted split whose day's volume moved the split's way is caught, on that day
    and no other; one day's volume noise hides at most a few 3:2 splits, none larger."""
    rows = _plant(_walks(40, daily_vol=0.02, seed=7), 500, coefficient)
    found = suspected(rows, NO_PREVIOUS, NO_ACTIONS)
    volume = rows.filter(pl.int_range(pl.len()).over("symbol").is_between(499, 500))
    moved = volume.group_by("symbol").agg(
        (pl.col("volume").log().diff().last() * math.log(coefficient) > 0).alias("inverse")
    )
    assert set(found["symbol"]) == set(moved.filter("inverse")["symbol"])
    assert found.height >= (36 if abs(math.log(coefficient)) < math.log(2) else 40)
    assert set(found["timestamp"]) == {DAYS[500].isoformat()}
    assert set(found["ratio"]) == {actions.ratio_text(coefficient)}
    assert actions.parse_split(found["ratio"][0]) == pytest.approx(coefficient)


def test_a_split_field_or_a_declared_split_explains_the_jump() -> None:
    base = _walks(3, daily_vol=0.02, seed=3)
    assert suspected(_plant(base, 100, 4.0, field=4.0), NO_PREVIOUS, NO_ACTIONS).is_empty()
    declared = pl.concat([actions.action(f"S{k}", DAYS[100], "split", "4:1") for k in range(3)])
    assert suspected(_plant(base, 100, 4.0), NO_PREVIOUS, declared).is_empty()
    # A declaration for another day or symbol explains nothing.
    elsewhere = pl.concat(
        [
            actions.action("S0", DAYS[101], "split", "4:1"),
            actions.action("S9", DAYS[100], "split", "4:1"),
        ]
    )
    assert suspected(_plant(base, 100, 4.0), NO_PREVIOUS, elsewhere).height == 3


def test_a_price_move_without_the_inverse_volume_move_is_not_a_split() -> None:
    """A +100% day on doubled volume (a rally, not a 1:2 reverse split) raises no alarm."""
    rows = _plant(_walks(5, daily_vol=0.02, seed=5), 200, 0.5)
    index = pl.int_range(pl.len()).over("symbol")
    rows = rows.with_columns(
        pl.when(index >= 200).then(pl.col("volume") * 4).otherwise("volume").alias("volume")
    )
    assert suspected(rows, NO_PREVIOUS, NO_ACTIONS).is_empty()


def test_the_gate_holds_back_a_one_day_batch_against_the_lake_until_declared(
    settings: Settings,
) -> None:
    """The batch of one day compares with the lake's last bar: held back with the command
    that declares the split; once declared, the same batch passes."""
    days = sessions(dt.date(2024, 3, 1), dt.date(2024, 3, 29))
    first, last = days[:-1], days[-1]
    before = random_bars(["ACME"], first).with_columns(pl.lit(1.0).alias("split_coefficient"))
    land(settings, first[-1], before)
    pipeline.validate(settings, first[-1])
    pipeline.transform(settings, first[-1])

    halved = before.tail(1).with_columns(
        pl.lit(last).alias("trade_date"),
        *(pl.col(c) / 2 * 1.01 for c in ("open", "high", "low", "close", "adjusted_close")),
        (pl.col("volume") * 2 + 1).alias("volume"),
    )
    land(settings, last, halved)
    with pytest.raises(QualityGateError) as caught:
        pipeline.validate(settings, last)
    assert f"fdp actions add ACME {last} split 2:1" in str(caught.value)
    assert f"ACME {last}" in str(caught.value)
    # The batch is held back whole; no row is put aside (it would make tomorrow's bar look
    # like the same split against a stale last bar).
    assert read_rejected(settings, last, "quality", source="simulator").is_empty()
    with pytest.raises(GateRefusedError):
        pipeline.transform(settings, last)

    actions.declare(settings, actions.action("ACME", last, "split", "2:1"))
    assert pipeline.validate(settings, last).rows_rejected == 0
    pipeline.transform(settings, last)
    stored = lake.scan(settings).sort("trade_date").collect()
    assert stored["split_coefficient"].to_list()[-2:] == [1.0, 2.0]
    assert stored["daily_return"][-1] == pytest.approx(1.0)  # +1%, not -49.5%


def test_an_overridden_alarm_lets_the_bar_in_as_traded(settings: Settings) -> None:
    """A real move the size of a split: overriding the gate admits it as traded, and the next
    day compares with it (no cascade of alarms)."""
    days = sessions(dt.date(2024, 3, 1), dt.date(2024, 4, 2))
    before = random_bars(["ACME"], days[:-2]).with_columns(pl.lit(1.0).alias("split_coefficient"))
    land(settings, days[-3], before)
    pipeline.validate(settings, days[-3])
    pipeline.transform(settings, days[-3])
    crash = before.tail(1).with_columns(
        pl.lit(days[-2]).alias("trade_date"),
        *(pl.col(c) / 2 for c in ("open", "high", "low", "close", "adjusted_close")),
        (pl.col("volume") * 3 + 1).alias("volume"),
    )
    land(settings, days[-2], crash)
    with pytest.raises(QualityGateError):
        pipeline.validate(settings, days[-2])
    pipeline.transform(settings, days[-2], override_gate="a real -50% day")
    land(settings, days[-1], crash.with_columns(pl.lit(days[-1]).alias("trade_date")))
    assert pipeline.validate(settings, days[-1]).rows_rejected == 0
