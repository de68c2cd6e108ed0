"""Transform engines: where the one transform plan runs.

``fdp.transform`` holds the stage, its plan and its kernel (cleansing rules and indicators),
written once. An engine only decides where that code runs and how rows move: the embedded
engine runs it in this process over the whole batch; the Spark engine reads the raw objects on
its executors, runs the plan per range of symbols in its Python workers and writes the staged
partition files from there, so nothing proportional to the batch reaches the driver. Both hand
back the same thing, staged files in the lake's format, which ``fdp.lake.publish`` swaps in
under the lake's lease. Engine modules are private and import no other engine; callers get one
from ``get_engine``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import polars as pl

from fdp.errors import ConfigError

if TYPE_CHECKING:
    from fdp.config import Settings
    from fdp.lake import StagedRun
    from fdp.quality.gate import Admission


@dataclass(frozen=True, slots=True)
class TransformJob:
    """One run of the transform: the batch of (``source``, ``run_date``), the time stamped on
    the rows it changes, and the gate every engine must pass the batch's fingerprint to
    before it computes anything (``admit`` raises when the batch may not be transformed)."""

    settings: Settings
    source: str
    run_date: dt.date
    processed_at: dt.datetime
    admit: Callable[[str], Admission]


@dataclass(frozen=True, slots=True)
class Staged:
    """What an engine computed and staged: counts, the rows it rejected (StockRecord + rule,
    reason), and the staged files that ``fdp.lake.publish`` makes the lake's."""

    rows_in: int
    rejected: pl.DataFrame
    computed: int
    written: int
    run: StagedRun
    gate_overridden: bool


class Engine(Protocol):
    """What every transform engine implements."""

    name: str

    def stage(self, job: TransformJob) -> Staged:
        """Read the batch, pass its fingerprint to ``job.admit``, then run the plan and stage
        the partition files it changes and the run's manifest (nothing published)."""
        ...


ENGINES = ("polars", "spark")


def get_engine(name: str, settings: Settings | None = None) -> Engine:
    """The engine called ``name`` (``FDP_ENGINE``); Spark's session follows ``settings``."""
    if name == "polars":
        from fdp.engines._polars import PolarsEngine

        return PolarsEngine()
    if name == "spark":
        from fdp.config import Settings
        from fdp.engines._spark import SparkEngine
        from fdp.spark_session import session

        return SparkEngine(session(settings or Settings()))
    raise ConfigError(f"unknown engine {name!r}; expected one of {ENGINES}")
