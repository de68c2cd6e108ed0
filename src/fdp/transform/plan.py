"""The transform's plan, written once for every engine: what a run reads, recomputes and changes.

For each symbol of a batch the run recomputes from the symbol's earliest bar in the batch
onwards, starting from the ``indicators.state_rows()`` curated rows before it (a daily run
therefore reads a few recent partitions only). A split in the batch, or a replaced bar that
carried a split, changes P for the whole history, so that symbol is recomputed from its first
row. A batch row whose key the lake holds from a later ingest is superseded (an older batch run
after a newer one must not win).

``processing_timestamp`` is the time of the run that last *changed* a row: a recomputed row whose
values equal the stored ones (1e-12 relative) keeps the stored row, timestamp included. So a
re-run changes no row, rewrites no partition and leaves the lake byte-identical, while a late or
corrected bar still stamps every row it changes.

Symbols are independent, so the plan runs over any set of whole symbols: the embedded engine
runs it once over the batch, Spark once per range of symbols in its Python workers; each reads
the lake state of its own symbols.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field

import polars as pl

from fdp import actions, indicators, lake
from fdp.config import Settings
from fdp.records import CleansedRecord, EnrichedStockRecord, Frame, StockRecord, in_key_order
from fdp.rejected import accepted_rows, superseded_rejects
from fdp.transform import kernel

UNCHANGED_REL_TOL = 1e-12
"""Recomputed indicator values this close to the stored ones leave the stored row in place."""


@dataclass(slots=True)
class Counts:
    """What the slices of a run computed and changed, filled as they stream to the lake."""

    computed: int = 0
    written: int = 0
    keys: list[pl.DataFrame] = field(default_factory=list)

    def manifest(self) -> pl.DataFrame:
        """The keys the warehouse must (re)load, unique and sorted (slices come in key order)."""
        if not self.keys:
            return pl.DataFrame(schema=lake.KEY_SCHEMA)
        return pl.concat(self.keys)


@dataclass(slots=True)
class Plan:
    """A batch's rows cleansed and planned: what to compute, from which state, against which
    stored rows, and what was rejected on the way."""

    rows_in: int
    rejected: pl.DataFrame
    bars: Frame[CleansedRecord]
    state: Frame[EnrichedStockRecord]
    stored: pl.DataFrame
    compute: tuple[str, ...]
    """The indicators the lake maintains; pending ones (``fdp.lake``) stay null."""


def prepare(settings: Settings, batch: Frame[StockRecord], gate_rejected: pl.DataFrame) -> Plan:
    """Cleanse the rows the gate admitted and plan their computation against the lake."""
    indicators.load(settings.indicators)  # a Spark executor has not imported them yet
    admitted = accepted_rows(batch, gate_rejected)
    cleansed = kernel.cleanse(admitted)
    declared = actions.apply(cleansed.rows.df, actions.read(settings))
    bars = Frame(CleansedRecord, declared, origin="cleansed bars, declared actions applied")
    bars, state, stored, superseded = _plan(settings, bars)
    rejected = pl.concat([_as_rejected(cleansed.rejected), superseded_rejects(superseded)])
    return Plan(len(admitted), rejected, bars, state, stored, lake.maintained(settings))


def changed_rows(
    plan: Plan,
    run_date: dt.date,
    counts: Counts,
    *,
    processed_at: dt.datetime,
    slice_rows: int | None = None,
) -> Iterator[Frame[EnrichedStockRecord]]:
    """The planned rows computed in slices, each cut to the rows that are new or changed
    (``counts`` gets what was computed, written and belongs in the manifest)."""
    slices = enrich_in_slices(
        plan.bars,
        plan.state,
        processed_at=processed_at,
        slice_rows=slice_rows,
        compute=plan.compute,
    )
    return _changed(slices, plan.stored, run_date, counts)


SLICE_ROWS = 1_000_000
"""Bars enriched at a time: symbols are independent, so a big batch is computed and written in
slices of whole symbols, which bounds memory to one slice's intermediate columns."""


def enrich_in_slices(
    bars: Frame[CleansedRecord],
    state: Frame[EnrichedStockRecord],
    *,
    processed_at: dt.datetime,
    slice_rows: int | None = None,
    compute: Collection[str] | None = None,
) -> Iterator[Frame[EnrichedStockRecord]]:
    """``kernel.enrich`` (of the ``compute`` indicators) over slices of whole symbols (about
    ``slice_rows`` bars each), in key order: each slice is sorted and holds symbols after the
    previous slice's."""
    ordered = in_key_order(bars.df)
    for part in _symbol_slices(ordered, slice_rows or SLICE_ROWS):
        own_state = (
            state.df if state.df.is_empty() else state.df.join(part, on="symbol", how="semi")
        )
        yield kernel.enrich(
            Frame(CleansedRecord, part, origin="bars to compute"),
            Frame(EnrichedStockRecord, own_state, origin="lake state"),
            processed_at=processed_at,
            compute=compute,
        )


def _changed(
    slices: Iterable[Frame[EnrichedStockRecord]],
    stored: pl.DataFrame,
    run_date: dt.date,
    counts: Counts,
) -> Iterator[Frame[EnrichedStockRecord]]:
    """The rows of each slice that are new or differ from the stored ones."""
    for enriched in slices:
        differs = changed_mask(enriched.df, stored)
        counts.computed += enriched.df.height
        counts.keys.append(_manifest_keys(enriched.df, differs, run_date))
        changed = enriched.df if differs.all() else enriched.df.filter(differs)
        counts.written += changed.height
        yield Frame(EnrichedStockRecord, changed, origin="changed rows")


def _symbol_slices(df: pl.DataFrame, rows: int) -> list[pl.DataFrame]:
    """``df`` (sorted by symbol) cut into zero-copy slices of whole symbols, about ``rows``
    rows each."""
    counts = df.group_by("symbol", maintain_order=True).len()["len"].to_list()
    slices, start, size = [], 0, 0
    for count in counts:
        if size and size + count > rows:
            slices.append(df.slice(start, size))
            start, size = start + size, 0
        size += count
    if size or not slices:
        slices.append(df.slice(start, size))
    return slices


def _as_rejected(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.select(*StockRecord.names(), "rule", "reason")


def _plan(
    settings: Settings, cleansed: Frame[CleansedRecord]
) -> tuple[Frame[CleansedRecord], Frame[EnrichedStockRecord], pl.DataFrame, pl.DataFrame]:
    """The bars to compute, the state rows before them, the stored rows they replace, and the
    batch rows that a later ingest already in the lake supersedes."""
    batch = cleansed.df
    if not lake.partitions(settings):  # a first backfill: nothing stored to read or supersede
        nothing = Frame.empty(EnrichedStockRecord)
        return cleansed, nothing, nothing.df, _superseded(batch, nothing.df)
    split = pl.col("split_coefficient") != 1.0
    wanted = batch.group_by("symbol").agg(
        pl.when(split.any()).then(None).otherwise(pl.col("trade_date").min()).alias("from_date")
    )
    history = lake.read_history(settings, wanted, indicators.state_rows())
    superseded = _superseded(batch, history)
    if not superseded.is_empty():
        batch = batch.join(superseded, on=lake.KEY, how="anti", maintain_order="left")
    # A replaced bar that carried a split changes P before it: recompute that symbol whole.
    # Joins against the whole batch are skipped when the other side is empty (a backfill).
    stored_splits = history.filter(split)
    if not stored_splits.is_empty():
        stored_splits = stored_splits.join(batch, on=lake.KEY, how="semi")
    lost_split = stored_splits["symbol"].unique()
    refresh = wanted.filter(
        pl.col("symbol").is_in(lost_split.implode()) & pl.col("from_date").is_not_null()
    )
    if not refresh.is_empty():
        full = refresh.with_columns(pl.lit(None, pl.Date).alias("from_date"))
        wanted = pl.concat([wanted.join(refresh, on="symbol", how="anti"), full])
        history = pl.concat(
            [
                history.join(refresh, on="symbol", how="anti"),
                lake.read_history(settings, full, indicators.state_rows()),
            ]
        )
    history = history.join(wanted, on="symbol", how="left", maintain_order="left")
    recompute = pl.col("from_date").is_null() | (pl.col("trade_date") >= pl.col("from_date"))
    names = EnrichedStockRecord.names()
    stored, state = (
        history.filter(recompute).select(names),
        history.filter(~recompute).select(names),
    )
    carried = stored_as_bars(
        settings, stored if stored.is_empty() else stored.join(batch, on=lake.KEY, how="anti")
    )
    # Ordered by ``enrich_in_slices`` (which skips that when they come ordered, as a backfill's do).
    bars = batch if carried.is_empty() else pl.concat([batch, carried])
    return (
        Frame(CleansedRecord, bars, origin="bars to compute"),
        Frame(EnrichedStockRecord, state, origin="lake state"),
        stored,
        superseded,
    )


def stored_as_bars(settings: Settings, stored: pl.DataFrame) -> pl.DataFrame:
    """Curated rows as bars to compute again (their source is the lake)."""
    return stored.with_columns(pl.lit(lake.table_url(settings)).alias("source_file")).select(
        CleansedRecord.names()
    )


def _superseded(batch: pl.DataFrame, history: pl.DataFrame) -> pl.DataFrame:
    """The batch rows whose key the lake holds from a later ingest (an older batch run after
    a newer one must not win): the batch row plus the stored row's ``stored_ingest_date``."""
    if history.is_empty():
        return batch.clear().with_columns(pl.lit(None, pl.Date).alias("stored_ingest_date"))
    stored = history.select(*lake.KEY, pl.col("ingest_date").alias("stored_ingest_date"))
    joined = batch.join(stored, on=lake.KEY, how="inner", maintain_order="left")
    return joined.filter(pl.col("stored_ingest_date") > pl.col("ingest_date"))


def _manifest_keys(enriched: pl.DataFrame, differs: pl.Series, run_date: dt.date) -> pl.DataFrame:
    """The keys the warehouse must (re)load for this run: every recomputed row up to the run
    date, and any later row whose values changed. Rows after the run date that a re-run only
    recomputed are left out, so re-running an old date writes the manifest it wrote first.
    ``enriched`` comes unique and sorted by key (the engine contract), so a filter keeps both."""
    keys = enriched[lake.KEY]
    wanted = (keys["trade_date"] <= run_date) | differs
    return keys if wanted.all() else keys.filter(wanted)


def changed_mask(enriched: pl.DataFrame, stored: pl.DataFrame) -> pl.Series:
    """Per enriched row (in its order): new, or different from the stored row of its key."""
    if stored.is_empty():
        return pl.Series("differs", [True], pl.Boolean).new_from_index(0, enriched.height)
    joined = enriched.join(stored, on=lake.KEY, how="left", suffix="_old", maintain_order="left")
    computed = indicators.computed_columns()
    exact = [
        c
        for c in EnrichedStockRecord.names()
        if c not in (*lake.KEY, *computed, "processing_timestamp")
    ]
    differs = pl.col("processing_timestamp_old").is_null()
    for column in exact:
        differs |= pl.col(column).ne_missing(pl.col(f"{column}_old"))
    for column in computed:
        new, old = pl.col(column), pl.col(f"{column}_old")
        far = (new - old).abs() > UNCHANGED_REL_TOL * pl.max_horizontal(new.abs(), old.abs())
        differs |= new.is_null().ne(old.is_null()) | far.fill_null(False)
    return joined.select(differs.alias("differs")).to_series()
