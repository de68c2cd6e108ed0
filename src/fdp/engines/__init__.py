"""Transform engines: one protocol, one implementation per dataframe engine.

The orchestration (``fdp.transform``) decides *which* rows to compute and with which history;
an engine only knows *how*: cleanse raw bars and compute the indicators of ``fdp.indicators``.
Engine code is private (``_polars``, later ``_spark``); callers get an engine from ``get_engine``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

import polars as pl

from fdp.errors import ConfigError
from fdp.records import CleansedRecord, EnrichedStockRecord, Frame, StockRecord


@dataclass(frozen=True, slots=True)
class Cleansed:
    """The result of cleansing: the kept rows and the rejected ones (StockRecord + rule, reason)."""

    rows: Frame[CleansedRecord]
    rejected: pl.DataFrame


class Engine(Protocol):
    """What every transform engine implements (tests run one body per engine)."""

    name: str

    def cleanse(self, raw: Frame[StockRecord]) -> Cleansed:
        """Apply the CleansedRecord contract; every dropped row comes back with a reason."""
        ...

    def enrich(
        self,
        bars: Frame[CleansedRecord],
        state: Frame[EnrichedStockRecord],
        *,
        processed_at: dt.datetime,
    ) -> Frame[EnrichedStockRecord]:
        """Enriched rows for every row of ``bars``, sorted by (symbol, trade_date).

        ``bars`` holds, per symbol, every row from the first one to (re)compute to the newest.
        ``state`` holds, per symbol, the curated rows just before that first row (at most
        ``fdp.indicators.STATE_ROWS``, or none for a symbol computed from its first row); their
        P and EMAs are taken as they are, so a split there must not be pending.
        """
        ...


ENGINES = ("polars", "spark")


def get_engine(name: str) -> Engine:
    """The engine called ``name`` (``FDP_ENGINE``)."""
    if name == "polars":
        from fdp.engines._polars import PolarsEngine

        return PolarsEngine()
    if name == "spark":
        from fdp.engines._spark import SparkEngine

        return SparkEngine.local()
    raise ConfigError(f"unknown engine {name!r}; expected one of {ENGINES}")
