"""The load stage: a run's changed curated rows into the warehouse, then reconciliation.

One transaction per run date: take the load lock and ask whether the fact table holds any row
inside the batch's key ranges (per symbol, its first and last date, sent as array parameters).
If not (a backfill, a new day), insert the rows (PostgreSQL: COPY straight into the fact
table; into an empty one without its primary key, added back after the rows) while the lake's
rows are fingerprinted on another thread, then reconcile. If it does, fingerprint the lake's
rows first and compare them with the stored ones (``reconcile.compare``: segments, then the
keys of the segments that differ), delete the changed rows, insert the changed and the missing
ones, and reconcile the segments written to: a row re-loaded unchanged stays as stored, so
loading a batch again rewrites nothing (no dead rows, no WAL). Redshift, which takes no key
ranges, deletes and inserts every key of the batch. A crash or a mismatch at any point rolls
back to the previous rows; re-running a date, or loading overlapping ranges, leaves exactly
one row per key.

A run's rows are read from the lake a slice of months at a time (``Batch``), each slice
written and fingerprinted before the next is read, so memory follows the slice, not the run.
Every key of the run's change manifest must be in the lake: one that is not fails the load,
named.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass

import polars as pl
import pyarrow.parquet as pq

from fdp import actions, history, lake
from fdp.config import Settings
from fdp.errors import DataError
from fdp.records import EnrichedStockRecord, Frame, check_finite
from fdp.storage import filesystem
from fdp.warehouse import keys, reconcile, sql
from fdp.warehouse.base import Session, Warehouse
from fdp.warehouse.connect import connect
from fdp.warehouse.migrations import migrate
from fdp.warehouse.observability import (
    known_symbols,
    symbol_info,
    upsert_symbols,
)

FAULT_ENV = "FDP_WAREHOUSE_FAULT"
"""Test hook: ``after_delete`` SIGKILLs the loader between the merge's DELETE and INSERT."""
SLICE_ROWS = 500_000
"""Rows per slice of a run read from the lake (whole months; a month is one slice at least)."""
SLICES_AHEAD = 1
"""Slices read ahead of the one being written: the lake read overlaps the load."""


@dataclass(frozen=True, slots=True)
class LoadResult:
    run_date: dt.date
    rows: int
    seconds: float
    warehouse: str


@dataclass(frozen=True, slots=True)
class Batch:
    """The rows of one load: their keys (unique), and the rows as slices of whole keys, read
    when iterated (a retried load iterates again)."""

    keys: pl.DataFrame
    slices: Callable[[], Iterator[pl.DataFrame]]

    @classmethod
    def of(cls, rows: pl.DataFrame) -> Batch:
        return cls(rows.select(keys.KEY), lambda: iter([rows]))

    def finite(self, where: str) -> Batch:
        """This batch, each slice checked for NaN and infinities as it is read: none may
        enter a warehouse (``fdp.records.check_finite``)."""
        slices = self.slices

        def checked() -> Iterator[pl.DataFrame]:
            for rows in slices():
                yield check_finite(Frame(EnrichedStockRecord, rows, origin=where), where).df

        return Batch(self.keys, checked)


def _partition_rows(settings: Settings, partitions: list[lake.Partition]) -> list[int]:
    """Each partition's row count, from its Parquet footer."""

    def count(partition: lake.Partition) -> int:
        fs, path = filesystem(lake.partition_url(settings, partition))
        with fs.open(path, "rb") as handle:
            return int(pq.ParquetFile(handle).metadata.num_rows)

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(count, partitions))


def lake_batch(settings: Settings, run_date: dt.date) -> Batch:
    """The current lake rows of the keys run ``run_date`` changed, as a ``Batch``; a run
    without a manifest is an error here (loading nothing would hide a transform that never
    ran), and so is a manifest key the lake lacks (named) or holds twice."""
    manifest = lake.changes_url(settings, run_date)
    fs, path = filesystem(manifest)
    if not fs.exists(path):
        raise DataError(
            f"no change manifest for run date {run_date} at {manifest}: run `fdp transform` first"
        )
    changed = lake.changed_keys(settings, run_date)
    keys.check_unique(changed, manifest)
    day = pl.col(keys.KEY[-1])
    by_month = changed.with_columns(
        day.dt.year().cast(pl.Int32).alias("year"), day.dt.month().cast(pl.Int32).alias("month")
    ).partition_by("year", "month", as_dict=True, include_key=False)
    wanted = {(int(y), int(m)): month for (y, m), month in sorted(by_month.items())}
    present = [p for p in lake.partitions(settings) if p in wanted]
    stored = dict(zip(present, _partition_rows(settings, present), strict=True))
    months = _Months(settings, wanted, stored, f"run date {run_date} ({manifest})")
    return Batch(changed, months.slices)


@dataclass(frozen=True, slots=True)
class _Months:
    """A run's manifest keys by month (in month order), and the rows each month's lake file
    holds, read a slice of months at a time.

    A month is read whole when the manifest names as many of its keys as it holds rows (a
    backfill: the join on the keys is a third of the read's time), else joined to its keys.
    Either way the keys read must then equal the manifest's: both are sorted, so an
    element-wise comparison proves it, and only a difference pays for the joins that name
    the keys (``_covering``)."""

    settings: Settings
    wanted: dict[lake.Partition, pl.DataFrame]
    stored: dict[lake.Partition, int]
    what: str

    def groups(self) -> list[list[lake.Partition]]:
        """Consecutive months of up to ``SLICE_ROWS`` rows (one month at least)."""
        groups: list[list[lake.Partition]] = [[]]
        rows = 0
        for partition, keys_of in self.wanted.items():
            if groups[-1] and rows + keys_of.height > SLICE_ROWS:
                groups.append([])
                rows = 0
            groups[-1].append(partition)
            rows += keys_of.height
        return groups

    def _scan(self, partitions: list[lake.Partition]) -> pl.LazyFrame:
        urls = [lake.partition_url(self.settings, p) for p in partitions]
        return lake.scan_files(self.settings, urls).select(EnrichedStockRecord.names())

    def read(self, group: list[lake.Partition]) -> pl.DataFrame:
        """The rows of a group of months: one scan of the months read whole, one joined to
        the keys of the others (files read in parallel, in month order)."""
        whole = [p for p in group if self.stored.get(p) == self.wanted[p].height]
        joined = [p for p in group if p in self.stored and p not in whole]
        absent = [p for p in group if p not in self.stored]
        parts = [self._scan(whole)] if whole else []
        if joined:
            on = pl.concat([self.wanted[p] for p in joined]).lazy()
            parts.append(
                self._scan(joined).join(on, on=keys.KEY, how="semi", maintain_order="left")
            )
        found = pl.concat(parts).collect() if parts else Frame.empty(EnrichedStockRecord).df
        expected = pl.concat([self.wanted[p] for p in whole + joined + absent])
        return _covering(found, expected, self.what)

    def slices(self) -> Iterator[pl.DataFrame]:
        """Each group's rows, the next group read on another thread meanwhile."""
        with ThreadPoolExecutor(1) as reader:
            ahead: deque[Future[pl.DataFrame]] = deque()
            for group in self.groups():
                ahead.append(reader.submit(self.read, group))
                if len(ahead) > SLICES_AHEAD:
                    yield ahead.popleft().result()
            while ahead:
                yield ahead.popleft().result()


def _covering(found: pl.DataFrame, wanted: pl.DataFrame, what: str) -> pl.DataFrame:
    """``found`` (lake rows of some months), after checking its keys are exactly ``wanted``'s
    (the manifest's keys of those months, in the same order when all is well)."""
    if found.height == wanted.height and found.select(keys.KEY).equals(wanted):
        return found
    keys.check_unique(found, what)
    reconcile.fail(what, missing_in_lake=wanted.join(found, on=keys.KEY, how="anti"))
    return found.join(wanted, on=keys.KEY, how="semi", maintain_order="left")


def read_changes(settings: Settings, run_date: dt.date) -> Frame[EnrichedStockRecord]:
    """The current lake rows of the keys run ``run_date`` changed, all at once
    (``lake_batch`` reads them a slice at a time)."""
    parts = list(lake_batch(settings, run_date).slices())
    rows = pl.concat(parts, rechunk=False) if parts else Frame.empty(EnrichedStockRecord).df
    return Frame(EnrichedStockRecord, rows, origin=lake.changes_url(settings, run_date))


def _fault_point(name: str) -> None:
    if os.environ.get(FAULT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def load_rows(warehouse: Warehouse, rows: Frame[EnrichedStockRecord], what: str) -> None:
    """Replace the warehouse rows of ``rows``' keys with ``rows`` and reconcile, in one
    transaction; ``what`` names the batch in errors. A key present twice in ``rows`` fails
    the load before it starts."""
    if not len(rows):
        return
    keys.check_unique(rows.df, what)
    _load(warehouse, Batch.of(rows.df), what)


def _load(warehouse: Warehouse, batch: Batch, what: str) -> None:
    d = warehouse.dialect
    ranges = keys.ranges(batch.keys) if d.key_ranges else None
    where = f"{what} in {warehouse.where}"
    batch = batch.finite(where)

    def merge(session: Session) -> None:
        if d.load_lock:
            session.execute(d.load_lock)
        for setting in d.load_settings:
            session.execute(setting)
        reconcile.check_port(session, d)
        if ranges is None:
            _replace_all(session, d, batch, where)
        elif session.fetchall(sql.fact_in_ranges(d), ranges):
            _replace_changed(session, d, batch, ranges, where)
        else:
            _insert(session, d, batch, ranges, where)

    warehouse.run(merge)


def _insert(
    session: Session, d: sql.Dialect, batch: Batch, ranges: keys.Ranges, where: str
) -> None:
    """Ranges that hold no row: insert every slice (the lake's rows fingerprinted on another
    thread meanwhile), then reconcile; any row inside the ranges besides the batch's is
    extra."""
    rebuild = _rebuilds_key(session, d, batch.keys.height)
    if rebuild:
        session.execute(sql.drop_fact_key())
    with ThreadPoolExecutor(1) as hasher:
        parts: list[Future[pl.DataFrame]] = []

        def fingerprinted() -> Iterator[pl.DataFrame]:
            for rows in batch.slices():
                parts.append(hasher.submit(_segments, session, d, rows))
                yield rows

        session.insert_all(fingerprinted())
        lake = _lake(session, d, batch, [f.result() for f in parts])
    if rebuild:
        session.execute(sql.add_fact_key())
    reconcile.check(session, d, lake, ranges, where, reconcile.none_stand)


def _segments(session: Session, d: sql.Dialect, rows: pl.DataFrame) -> pl.DataFrame:
    return reconcile.segments(reconcile.lake_fingerprints(session, d, rows))


def _lake(
    session: Session, d: sql.Dialect, batch: Batch, parts: list[pl.DataFrame] | None = None
) -> reconcile.Lake:
    """The lake's side of reconciliation: from the slices' segments (``parts``, else computed
    when first asked, a pass over the slices); per-key fingerprints from a pass over them
    again."""

    def segments() -> list[pl.DataFrame]:
        if parts is not None:
            return parts
        return [_segments(session, d, rows) for rows in batch.slices()]

    return reconcile.Lake.of(
        segments,
        batch.slices,
        lambda rows: reconcile.lake_fingerprints(session, d, rows),
        beside=d.lake_hash_by != "warehouse",
    )


def _replace_changed(
    session: Session, d: sql.Dialect, batch: Batch, ranges: keys.Ranges, where: str
) -> None:
    """Ranges that hold rows: compare the stored rows with the lake's by fingerprint first,
    delete the changed ones (by range for a segment whose every stored row changed, else by
    key), insert the changed and the missing ones (a second pass over the slices), and
    reconcile the segments written to (the others were just compared)."""
    lake = _lake(session, d, batch)
    before = reconcile.compare(session, d, lake, ranges)
    written = pl.concat([before.changed, before.missing])
    if not written.height:
        return
    rebuild = _rebuilds_key(session, d, written.height)
    if rebuild:
        session.execute(sql.drop_fact_key())
    if before.replaced.height:
        session.execute(sql.delete_in_ranges(d), keys.within(ranges, before.replaced))
    by_key = before.changed.join(before.replaced, on=reconcile.SEGMENT, how="anti")
    if by_key.height:
        _stage(session, d, by_key)
        session.execute(sql.delete_staged_keys())
        _unstage(session, d)
    if before.changed.height:
        _fault_point("after_delete")
    session.insert_all(
        rows.join(written, on=keys.KEY, how="semi", maintain_order="left")
        for rows in batch.slices()
    )
    if rebuild:
        session.execute(sql.add_fact_key())
    segments = written.select(reconcile.SEGMENT).unique()
    reconcile.check(
        session, d, lake.only(segments), keys.within(ranges, segments), where, reconcile.all_stand
    )


def _rebuilds_key(session: Session, d: sql.Dialect, rows: int) -> bool:
    """Whether writing ``rows`` rows should drop and re-add the primary key
    (``sql.Dialect.rebuild_key_share``)."""
    if d.rebuild_key_share is None:
        return False
    if not session.fetchall(sql.fact_is_empty()):
        return True
    estimate = float(session.fetchall(sql.fact_row_estimate())[0][0])
    return estimate > 0 and rows >= d.rebuild_key_share * estimate


def _replace_all(session: Session, d: sql.Dialect, batch: Batch, where: str) -> None:
    """No key ranges (Redshift): stage the whole batch, delete every stored row of its keys,
    insert the staged rows and reconcile over the staged keys."""
    parts = list(batch.slices())
    rows = pl.concat(parts, rechunk=False) if parts else Frame.empty(EnrichedStockRecord).df
    _stage(session, d, rows)
    session.execute(sql.delete_staged_keys())
    _fault_point("after_delete")
    session.insert(rows)
    lake = _lake(session, d, Batch.of(rows))
    reconcile.check(session, d, lake, None, where, reconcile.all_stand)
    _unstage(session, d)


def _stage(session: Session, d: sql.Dialect, rows: pl.DataFrame) -> None:
    """Stage ``rows`` (whole rows, or keys only) in a staging table (DuckDB: a view over them,
    which ``stage`` creates)."""
    if d is not sql.DUCKDB:
        session.execute(sql.create_stage(keys_only=rows.width == len(keys.KEY)))
    session.stage(rows)


def _unstage(session: Session, d: sql.Dialect) -> None:
    """Drop the staging table ``_stage`` created (DuckDB's stage is a view over the rows)."""
    if d is not sql.DUCKDB:
        session.execute(sql.drop_stage())


def _add_symbols(warehouse: Warehouse, symbols: set[str]) -> None:
    """Give each newly seen symbol its dim_symbol row (existing rows are left alone)."""
    new = symbols - warehouse.run(known_symbols)
    if new:
        upsert_symbols(warehouse, [symbol_info(s) for s in sorted(new)])


@lake.leased("load")
def load_run(settings: Settings, run_date: dt.date, warehouse_url: str | None = None) -> LoadResult:
    """Load run ``run_date``'s changed rows (``fdp.pipeline.load`` records the task run)."""
    warehouse = connect(warehouse_url or settings.warehouse_url, settings)
    migrate(warehouse)
    t0 = time.perf_counter()
    batch = lake_batch(settings, run_date)
    if batch.keys.height:
        _load(warehouse, batch, f"run date {run_date}")
        _add_symbols(warehouse, set(batch.keys["symbol"].unique().to_list()))
    load_history(warehouse, settings, run_date)
    load_actions(warehouse, settings)
    return LoadResult(run_date, batch.keys.height, time.perf_counter() - t0, warehouse.where)


def load_history(warehouse: Warehouse, settings: Settings, run_date: dt.date) -> None:
    """Replace the warehouse's versions replaced on ``run_date`` with the lake's (few: rows
    replaced by restatements), in one transaction; a re-run loads the same rows again."""
    versions = history.versions_replaced_on(settings, run_date)
    d = warehouse.dialect
    names = versions.columns
    rows = versions.rows()

    def replace(session: Session) -> None:
        session.execute(sql.delete_history_run(d), (run_date,))
        if rows:
            session.executemany(sql.insert_history(d, names), rows)

    warehouse.run(replace)


def load_actions(warehouse: Warehouse, settings: Settings) -> None:
    """Replace the warehouse's corporate actions with the lake's (``fdp.actions``: a few rows,
    so the whole table, in one transaction): every load leaves them equal."""
    rows = actions.read(settings).select(sql.ACTION_COLUMNS).rows()

    def replace(session: Session) -> None:
        session.execute(sql.delete_actions())
        if rows:
            session.executemany(sql.insert_actions(warehouse.dialect), rows)

    warehouse.run(replace)


def run_dates(settings: Settings, start: dt.date, end: dt.date) -> list[dt.date]:
    """The run dates in [start, end] that have a change manifest, oldest first."""
    fs, root = filesystem(settings.path(lake.CURATED, lake.CHANGES))
    if not fs.exists(root):
        return []
    dates = []
    for entry in fs.ls(root, detail=False):
        name = str(entry).rstrip("/").rsplit("/", 1)[-1]
        if name.startswith("run_date="):
            with suppress(ValueError):
                day = dt.date.fromisoformat(name.removeprefix("run_date="))
                if start <= day <= end:
                    dates.append(day)
    return sorted(dates)


@lake.leased("reconcile")
def reconcile_run(settings: Settings, run_date: dt.date, warehouse_url: str | None = None) -> int:
    """Check, after the load committed, that the warehouse rows of run ``run_date``'s keys
    equal the lake's, and that the key ranges hold no row the lake lacks; return the number
    of rows checked."""
    warehouse = connect(warehouse_url or settings.warehouse_url, settings)
    d = warehouse.dialect
    batch = lake_batch(settings, run_date)
    if not batch.keys.height:
        return 0
    ranges = keys.ranges(batch.keys) if d.key_ranges else None
    where = f"run date {run_date} in {warehouse.where}"

    def check(session: Session) -> None:
        for setting in d.load_settings:
            session.execute(setting)
        reconcile.check_port(session, d)
        if ranges is None:
            rows = pl.concat(list(batch.slices()), rechunk=False)
            _stage(session, d, rows)
            lake = _lake(session, d, Batch.of(rows))
        else:
            lake = _lake(session, d, batch)
        reconcile.check(session, d, lake, ranges, where, _in_lake(settings))
        if ranges is None:
            _unstage(session, d)

    warehouse.run(check)
    return batch.keys.height


def _in_lake(settings: Settings) -> reconcile.Stands:
    """Of some keys, those the lake holds (rows of other runs may stand in a run's ranges)."""

    def held(wanted: pl.DataFrame) -> pl.DataFrame:
        day = pl.col(keys.KEY[-1])
        months = wanted.select(day.dt.year() * 100 + day.dt.month()).to_series().unique()
        month = pl.col("year") * 100 + pl.col("month")
        return (
            lake.scan(settings)
            .filter(month.is_in(months.implode()))
            .select(keys.KEY)
            .join(wanted.lazy(), on=keys.KEY, how="semi")
            .collect()
        )

    return held
