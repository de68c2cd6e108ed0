"""Corporate actions as data: a declared split recomputes the symbol's history exactly as the
vendor's split field would have, whether declared after its bars are stored or before they
arrive; the CLI declares and lists them."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from polars.testing import assert_frame_equal

from bars import land, unvalidated
from fdp import actions, lake
from fdp.calendar import sessions
from fdp.cli.main import main
from fdp.config import Settings
from fdp.engines import Engine
from fdp.errors import ConfigError
from fdp.transform.stage import transform

DAYS = sessions(dt.date(2024, 1, 2), dt.date(2024, 6, 28))
SPLIT_DAY = 60


def _series(coefficient: float, *, field: bool, seed: int = 1) -> pl.DataFrame:
    """Two symbols' random walks; ACME splits ``coefficient`` on day ``SPLIT_DAY`` (prices
    divided, volume multiplied), its split field set only when ``field``."""
    rng = np.random.default_rng(seed)
    n = len(DAYS)
    frames = []
    for symbol in ("ACME", "OTHER"):
        close = 80 * np.exp(np.cumsum(rng.normal(0, 0.015, n)))
        volume = rng.integers(1_000, 2_000, n).astype(np.float64)
        split = np.ones(n)
        if symbol == "ACME":
            close[SPLIT_DAY:] /= coefficient
            volume[SPLIT_DAY:] *= coefficient
            split[SPLIT_DAY] = coefficient if field else 1.0
        frames.append(
            pl.DataFrame(
                {
                    "symbol": symbol,
                    "trade_date": DAYS,
                    "open": close,
                    "high": close * 1.01,
                    "low": close * 0.99,
                    "close": close,
                    "adjusted_close": close,
                    "volume": volume.round().astype(np.int64),
                    "dividend_amount": 0.0,
                    "split_coefficient": split,
                }
            )
        )
    return pl.concat(frames)


def _curated(settings: Settings) -> pl.DataFrame:
    return lake.scan(settings).collect().drop("processing_timestamp").sort(lake.KEY)


def _build(settings: Settings, bars: pl.DataFrame) -> None:
    day = DAYS[-1]
    land(settings, day, bars)
    transform(settings, day, gate=unvalidated(settings, day))


def _settings(root: object, name: str) -> Settings:
    return Settings(data_dir=f"{root}/{name}")


@pytest.mark.parametrize("ratio", ["4:1", "1:10"])
def test_a_split_declared_after_its_bars_equals_the_vendors_split_field(
    tmp_path: object, ratio: str
) -> None:
    coefficient = actions.parse_split(ratio)
    vendor, declared = _settings(tmp_path, "vendor"), _settings(tmp_path, "declared")
    _build(vendor, _series(coefficient, field=True))
    _build(declared, _series(coefficient, field=False))
    wrong = _curated(declared)
    assert not wrong.equals(_curated(vendor))

    day = DAYS[SPLIT_DAY]
    out = CliRunner().invoke(
        main, ["actions", "add", "acme", day.isoformat(), "split", ratio], env=_env(declared)
    )
    assert out.exit_code == 0, out.output
    assert f"declared ACME {day} split {ratio}" in out.output
    assert_frame_equal(_curated(declared), _curated(vendor), rel_tol=1e-12)
    # OTHER was not touched; a second declaration of the same split changes nothing.
    again = CliRunner().invoke(
        main, ["actions", "add", "ACME", day.isoformat(), "split", ratio], env=_env(declared)
    )
    assert "recomputed: 0 rows changed" in again.output
    listed = CliRunner().invoke(main, ["actions", "list"], env=_env(declared))
    assert listed.exit_code == 0, listed.output
    assert "declared" in listed.output
    learned = CliRunner().invoke(main, ["actions", "list", "--symbol", "acme"], env=_env(vendor))
    assert f"{day}" in learned.output
    assert "vendor" in learned.output
    assert ratio in learned.output
    assert "ACME" in listed.output
    assert ratio in listed.output


def _env(settings: Settings) -> dict[str, str]:
    return {"FDP_DATA_DIR": settings.data_dir}


def test_a_split_declared_before_its_bar_arrives_is_applied_by_the_transform(
    tmp_path: object, engine: Engine
) -> None:
    """Declared while the lake holds only the bars before it: the transform of the batch
    holding the split day applies it and recomputes the symbol from its first row, on each
    engine (Spark's plan reads the declarations on its executors)."""
    vendor, declared = _settings(tmp_path, "vendor"), _settings(tmp_path, "declared")
    _build(vendor, _series(2.0, field=True))
    bars = _series(2.0, field=False)
    before = bars.filter(pl.col("trade_date") < DAYS[SPLIT_DAY])
    land(declared, DAYS[SPLIT_DAY - 1], before)
    transform(
        declared,
        DAYS[SPLIT_DAY - 1],
        gate=unvalidated(declared, DAYS[SPLIT_DAY - 1]),
        engine=engine,
    )
    from fdp.transform.recompute import declare

    declare(declared, actions.action("ACME", DAYS[SPLIT_DAY], "split", "2:1"))
    land(declared, DAYS[-1], bars.filter(pl.col("trade_date") >= DAYS[SPLIT_DAY]))
    transform(declared, DAYS[-1], gate=unvalidated(declared, DAYS[-1]), engine=engine)
    assert_frame_equal(
        _curated(declared).drop("ingest_date"), _curated(vendor).drop("ingest_date"), rel_tol=1e-12
    )


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("split", "1:1"),
        ("split", "4"),
        ("split", "0:1"),
        ("split", "1000:1"),
        ("dividend", "-1"),
        ("dividend", "nan"),
        ("merger", "1"),
    ],
)
def test_bad_declarations_are_refused(settings: Settings, kind: str, value: str) -> None:
    with pytest.raises(ConfigError):
        actions.action("ACME", DAYS[0], kind, value)
    out = CliRunner().invoke(main, ["actions", "add", "ACME", "2024-01-02", kind, value])
    assert out.exit_code == 2
    assert actions.read(settings).is_empty()


def _oracle(bars: pl.DataFrame) -> dict[str, list[float]]:
    """Split- and total-return-adjusted closes of one symbol's bars, by a plain backward walk
    (independent of ``fdp.data``): walking from the last bar back, the split factor grows by
    each bar's split coefficient and the dividend factor by (1 - dividend / previous close),
    both in as-traded terms of their own day."""
    close = bars["close"].to_list()
    split = bars["split_coefficient"].to_list()
    dividend = bars["dividend_amount"].to_list()
    n = len(close)
    split_adj, total_adj = [0.0] * n, [0.0] * n
    later_splits, later_dividends = 1.0, 1.0
    for t in range(n - 1, -1, -1):
        split_adj[t] = close[t] / later_splits
        total_adj[t] = close[t] / later_splits * later_dividends
        if t > 0 and dividend[t] > 0:
            # Both the dividend and the previous close in the basis of day t: the previous
            # close is in day t-1's shares, which day t's split multiplies.
            later_dividends *= 1 - dividend[t] / (close[t - 1] / split[t])
        later_splits *= split[t]
    return {"split": split_adj, "total": total_adj}


def test_adjusted_reads_equal_an_independent_backward_walk(settings: Settings) -> None:
    """raw is as traded; split and total equal the oracle over the whole history and over a
    window (whose factors still come from the bars after it)."""
    from fdp.data import read

    bars = _series(3.0, field=True)
    index = pl.int_range(pl.len()).over("symbol")
    bars = bars.with_columns(
        pl.when(index.is_in([20, 85, 110])).then(1.5).otherwise(0.0).alias("dividend_amount")
    )
    bars = bars.with_columns(
        pl.when(index == 100).then(0.5).otherwise("split_coefficient").alias("split_coefficient"),
        *(
            pl.when(index >= 100).then(pl.col(c) * 2).otherwise(c).alias(c)
            for c in ("open", "high", "low", "close", "adjusted_close")
        ),
    )
    _build(settings, bars)
    acme = bars.filter(pl.col("symbol") == "ACME").sort("trade_date")
    expected = _oracle(acme)
    raw = read("ACME", settings=settings)
    assert raw["close"].to_list() == pytest.approx(acme["close"].to_list(), rel=1e-12)
    for mode in ("split", "total"):
        got = read("ACME", adjust=mode, settings=settings)  # type: ignore[arg-type]
        assert got["close"].to_list() == pytest.approx(expected[mode], rel=1e-10)
        ratio = (got["high"] / got["close"]).to_list()
        assert ratio == pytest.approx((raw["high"] / raw["close"]).to_list(), rel=1e-12)
        window = read(
            "ACME",
            DAYS[50],
            DAYS[90],
            ["close", "volume"],
            adjust=mode,
            settings=settings,  # type: ignore[arg-type]
        )
        assert window["close"].to_list() == pytest.approx(expected[mode][50:91], rel=1e-10)
        assert window.columns == ["symbol", "trade_date", "close", "volume"]
    shown = CliRunner().invoke(
        main,
        ["show", "ACME", "--adjust", "total", "--columns", "close", "--limit", "200"],
        env={"FDP_DATA_DIR": settings.data_dir},
    )
    assert shown.exit_code == 0, shown.output
    assert "total-adjusted" in shown.output
    assert f"{expected['total'][0]:,.4f}" in shown.output
    split_volume = read("ACME", DAYS[0], DAYS[0], ["volume"], adjust="split", settings=settings)
    assert split_volume["volume"][0] == round(acme["volume"][0] * 3.0 * 0.5)


def test_an_action_on_a_day_without_a_bar_is_refused(settings: Settings) -> None:
    """A Saturday inside the stored history would never apply: refused, nothing written. A
    date after the last bar waits for its bar."""
    _build(settings, _series(2.0, field=False))
    saturday = dt.date(2024, 3, 2)
    out = CliRunner().invoke(
        main,
        ["actions", "add", "ACME", saturday.isoformat(), "split", "2:1"],
        env=_env(settings),
    )
    assert out.exit_code == 2
    assert f"ACME has no bar on {saturday}" in out.output
    assert actions.read(settings).is_empty()
    later = CliRunner().invoke(
        main, ["actions", "add", "ACME", "2024-07-01", "dividend", "0.5"], env=_env(settings)
    )
    assert later.exit_code == 0, later.output
    assert "recomputed: 0 rows changed" in later.output
    assert actions.read(settings).height == 1
