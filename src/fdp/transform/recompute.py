"""Indicators added to an existing lake: computed over its history and written in place.

An indicator registered after a lake was built is pending (``fdp.lake``): runs write it null,
since its recursion or windows would need rows the run does not read. ``recompute`` computes
the named indicators (and those they read) from each symbol's first row, keeps every other
column as stored, and writes back only the rows in [start, end] whose values change, with a
manifest of their keys for the warehouse. Over the whole history, the indicators become
maintained: every later run computes them incrementally. A second call changes nothing.

It reads the whole lake into memory (the embedded engine's limit); the rows it writes are only
the changed ones, partition by partition, like a transform's.

``declare`` is the other recompute: a corporate action declared for bars the lake already holds
(``fdp.actions``) changes P over the symbol's whole history, so the declaration recomputes
those symbols at once, from their first row, exactly as a transform does for a batch that
carries a split (and later transforms apply the declaration to every new or restated bar).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import polars as pl

from fdp import actions, history, indicators, lake
from fdp.config import Settings
from fdp.errors import ConfigError
from fdp.records import CleansedRecord, EnrichedStockRecord, Frame
from fdp.transform import plan


@dataclass(frozen=True, slots=True)
class RecomputeResult:
    """What a recompute did."""

    run_date: dt.date | None
    """The run date the manifest is filed under; ``None`` when the lake held nothing to
    recompute."""
    indicators: tuple[str, ...]
    rows_written: int
    partitions_replaced: int
    maintained: bool
    duration_s: float


def last_session(settings: Settings) -> dt.date:
    """The lake's newest trade date: the run date a recompute's manifest is filed under."""
    parts = lake.partitions(settings)
    if not parts:
        raise ConfigError(
            "the curated lake is empty: there is no history to compute indicators over",
            hint="build it first: fdp backfill --start ... --end ...",
        )
    return lake.read_partition(settings, parts[-1])["trade_date"].max()  # type: ignore[return-value]


@lake.leased("recompute")
def recompute(
    settings: Settings,
    names: Sequence[str],
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    now: dt.datetime | None = None,
) -> RecomputeResult:
    """Compute ``names`` over every symbol's history; write the changed rows of [start, end]."""
    started = time.perf_counter()
    chosen = indicators.with_dependencies(names)
    run_date = last_session(settings)
    processed_at = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    stored = pl.concat([lake.read_partition(settings, p) for p in lake.partitions(settings)])
    stored = stored.sort(lake.KEY)
    keys: list[pl.DataFrame] = []
    changed = _changed(settings, stored, chosen, (start, end), processed_at, keys)
    staged = lake.stage(settings, changed)
    manifest = pl.concat([lake.changed_keys(settings, run_date), *keys]).unique().sort(lake.KEY)
    run = lake.StagedRun(run_date, staged, lake.stage_changes(manifest))
    replaced = lake.publish(settings, run)
    whole = start is None and end is None
    if whole:
        lake.record_maintained(settings, {*lake.maintained(settings), *chosen})
    return RecomputeResult(
        run_date=run_date,
        indicators=chosen,
        rows_written=sum(k.height for k in keys),
        partitions_replaced=len(replaced),
        maintained=whole,
        duration_s=time.perf_counter() - started,
    )


def _changed(
    settings: Settings,
    stored: pl.DataFrame,
    chosen: tuple[str, ...],
    dates: tuple[dt.date | None, dt.date | None],
    processed_at: dt.datetime,
    keys: list[pl.DataFrame],
) -> Iterator[Frame[EnrichedStockRecord]]:
    """Per slice of whole symbols: the stored rows with ``chosen`` recomputed in ``dates``,
    cut to the rows whose values change (``keys`` gets theirs)."""
    bars = Frame(CleansedRecord, plan.stored_as_bars(settings, stored), origin="lake rows")
    slices = plan.enrich_in_slices(
        bars, Frame.empty(EnrichedStockRecord), processed_at=processed_at, compute=chosen
    )
    start, end = dates
    in_range = pl.lit(True)
    if start is not None:
        in_range &= pl.col("trade_date") >= start
    if end is not None:
        in_range &= pl.col("trade_date") <= end
    offset = 0
    for enriched in slices:
        old = stored.slice(offset, len(enriched))
        offset += len(enriched)
        new = old.with_columns(
            pl.when(in_range).then(enriched.df[c]).otherwise(pl.col(c)).alias(c) for c in chosen
        )
        differs = plan.changed_mask(new, old)
        rows = new.filter(differs).with_columns(
            pl.lit(processed_at).cast(pl.Datetime("us", "UTC")).alias("processing_timestamp")
        )
        keys.append(rows.select(lake.KEY))
        yield Frame(EnrichedStockRecord, rows, origin="recomputed rows")


@lake.leased("actions")
def declare(
    settings: Settings, declared: pl.DataFrame, *, now: dt.datetime | None = None
) -> RecomputeResult:
    """Add the ``declared`` actions (rows of ``actions.action``) and recompute the whole
    history of their symbols the lake holds; write the rows that change, with a manifest of
    their keys filed under the lake's last session (``fdp load`` of that date loads them)."""
    started = time.perf_counter()
    compute = lake.maintained(settings)
    symbols = declared.select("symbol").unique()
    stored = (
        lake.read_history(
            settings, symbols.with_columns(pl.lit(None, pl.Date).alias("from_date")), 0
        )
        if lake.partitions(settings)
        else pl.DataFrame()
    )
    _check_sessions(declared, stored)
    actions.declare(settings, declared)
    if stored.is_empty():
        return RecomputeResult(None, compute, 0, 0, False, time.perf_counter() - started)
    run_date = last_session(settings)
    bars = actions.apply(plan.stored_as_bars(settings, stored), actions.read(settings))
    whole = plan.Plan(
        rows_in=0,
        rejected=pl.DataFrame(),
        bars=Frame(CleansedRecord, bars, origin="lake rows, declared actions applied"),
        state=Frame.empty(EnrichedStockRecord),
        stored=stored,
        compute=compute,
    )
    counts = plan.Counts()
    processed_at = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    staged = lake.stage(
        settings, plan.changed_rows(whole, run_date, counts, processed_at=processed_at)
    )
    keys = pl.concat([lake.changed_keys(settings, run_date), counts.manifest()])
    run = lake.StagedRun(run_date, staged, lake.stage_changes(keys.unique().sort(lake.KEY)))
    history.record(settings, run)
    replaced = lake.publish(settings, run)
    return RecomputeResult(
        run_date, compute, counts.written, len(replaced), False, time.perf_counter() - started
    )


def _check_sessions(declared: pl.DataFrame, stored: pl.DataFrame) -> None:
    """Refuse an action dated inside the span of its symbol's stored bars on a day without a
    bar (a weekend, a holiday, a typo): it would never apply. One dated before the first bar
    or after the last waits for its bar."""
    if stored.is_empty():
        return
    spans = stored.group_by("symbol").agg(
        pl.col("trade_date").min().alias("first"), pl.col("trade_date").max().alias("last")
    )
    inside = declared.join(spans, on="symbol").filter(
        pl.col("ex_date").is_between(pl.col("first"), pl.col("last"))
    )
    lost = inside.join(
        stored.select("symbol", pl.col("trade_date").alias("ex_date")),
        on=["symbol", "ex_date"],
        how="anti",
    )
    if lost.is_empty():
        return
    symbol, day = str(lost["symbol"][0]), lost["ex_date"][0]
    bars = stored.filter(pl.col("symbol") == symbol)["trade_date"]
    before, after = (str(d) for d in (bars.filter(bars < day).max(), bars.filter(bars > day).min()))
    raise ConfigError(
        f"{symbol} has no bar on {day}, inside its stored history: the action would never apply",
        symbol=symbol,
        date=day,
        hint=f"date it on the ex-date's session (the bars around it: {before} and {after})",
    )
