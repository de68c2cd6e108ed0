"""Row-exact reconciliation: the warehouse holds exactly the lake's rows of a batch, by key.

Each row has a 64-bit fingerprint of every column, NULLs included (a NULL never hashes like 0,
0.0 or ''), computed by the database over the rows it stored and, independently, over the
rows read from the lake. As in data-diff, the two sides first compare segments (per symbol:
row count and the exact sum of the fingerprints, a 128-bit number); only for a segment that
differs are the per-key fingerprints fetched and compared, which names every changed key,
every key missing from the warehouse, and every extra row inside the batch's key ranges.
Floats compare bit for bit (both sides hold the same doubles), except that 0.0 and -0.0 are
one value and every NaN is the same NaN (so a NaN never fails forever).

Per database (``sql.Dialect.row_hash``, ``lake_hash_by``):

- PostgreSQL >= 14: ``hash_record_extended(ROW(...), seed)``, seeded per row
  (``sql.ROW_SEED_OFFSET``); the lake side is fdp's own numpy rewrite of PostgreSQL's hash
  functions (``pghash``), checked bit for bit against the server in the tests and, before
  each use, on one probe row (a server hashing otherwise, e.g. big-endian, fails loudly
  instead of reporting every row as changed).
- DuckDB: its ``hash`` of the columns, rehashed; the lake side is the same function run by
  an in-memory DuckDB of its own over the lake's Arrow rows: one library, two data paths (a
  fault in DuckDB's hash itself would hit both sides alike).
- Redshift cannot be run here, so this is tested on PostgreSQL with a stand-in for its hash
  only: FNV-1a chained over the columns, each after its NULL flag, computed by Redshift over
  the fact rows and over the staging table COPY'd from the lake's Parquet (no local rewrite
  of FNV_HASH can be checked against the real one). The staged keys, not key ranges, select
  the fact rows (Redshift takes no array parameters), so an extra row beside them goes
  unseen there, and -0.0 and 0.0 hash apart.

The lake side keeps only each segment's sums (``Lake``); the per-key fingerprints of a
segment that differs are computed again from the lake's rows when needed, so memory follows a
slice of rows, not every key of a run.

A warehouse row inside the key ranges whose key the batch lacks is extra unless ``stands``
says it may be there: a load into ranges that held no row allows none; one into ranges that
held rows allows the rows it did not carry (it cannot tell an intruder from them); the check
after the load (``loader.reconcile_run``) allows those whose key the lake holds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import polars as pl

from fdp.errors import TerminalError
from fdp.records import ROW_KEY, EnrichedStockRecord
from fdp.warehouse import duck, keys, pghash, sql
from fdp.warehouse.base import Session

KEY = ROW_KEY
SEGMENT = KEY[:-1]
FINGERPRINT = sql.FINGERPRINT
ROWS = sql.SEGMENT_ROWS
SHOWN = 5
"""Keys named per kind of difference; the counts cover all of them."""

KEY_SCHEMA = pl.Schema({k: EnrichedStockRecord.polars_schema()[k] for k in KEY})
SEGMENT_SCHEMA = pl.Schema({k: KEY_SCHEMA[k] for k in SEGMENT})
FINGERPRINT_TYPE: dict[sql.RowHash, pl.DataType] = {
    "hash_record_extended": pl.Int64(),
    "duckdb_hash": pl.UInt64(),
    "fnv_hash": pl.Int64(),
}
"""How each database's row fingerprint arrives."""

Stands = Callable[[pl.DataFrame], pl.DataFrame]
"""Given the keys of warehouse rows inside the ranges that the batch lacks, those that may
legitimately be there."""


def none_stand(others: pl.DataFrame) -> pl.DataFrame:
    """Ranges that held no row before the load: nothing may stand beside the batch."""
    return others.head(0)


def all_stand(others: pl.DataFrame) -> pl.DataFrame:
    """Ranges that held rows: the load cannot tell the rows it did not carry from intruders."""
    return others


class ReconciliationError(TerminalError):
    """The warehouse's rows differ from the lake's; ``differences`` maps each kind
    (``changed``, ``missing in warehouse``, ``extra in warehouse``, ``missing in lake``) to
    the keys found, in key order."""

    def __init__(self, where: str, differences: dict[str, list[tuple[Any, ...]]]) -> None:
        self.differences = differences
        parts = []
        for kind, found in differences.items():
            shown = ", ".join(_key_text(k) for k in found[:SHOWN])
            more = f", +{len(found) - SHOWN} more" if len(found) > SHOWN else ""
            parts.append(f"{kind} {len(found)}: {shown}{more}")
        first = next(iter(differences.values()))[0]
        super().__init__(
            f"reconciliation failed for {where}: " + "; ".join(parts),
            symbol=str(first[0]),
            date=first[-1] if isinstance(first[-1], dt.date) else None,
            hint="load the run again (fdp load --date D); if it fails again, look for another "
            "writer of the fact table or a lake file changed behind the pipeline's back",
        )


def _key_text(key: tuple[Any, ...]) -> str:
    return " ".join(str(v) for v in key)


def fail(where: str, **differences: pl.DataFrame) -> None:
    """Raise ``ReconciliationError`` for the non-empty key frames of ``differences`` (keyword
    names use ``_`` for spaces)."""
    found = {
        kind.replace("_", " "): frame.select(KEY).sort(KEY).rows()
        for kind, frame in differences.items()
        if frame.height
    }
    if found:
        raise ReconciliationError(where, found)


def lake_fingerprints(session: Session, d: sql.Dialect, rows: pl.DataFrame) -> pl.DataFrame:
    """The key and fingerprint of each lake row (``sql.Dialect.lake_hash_by``): by fdp's
    rewrite of PostgreSQL's hashing, by DuckDB in process, or by the warehouse over ``rows``
    as staged for the load (``Session.stage``)."""
    schema = pl.Schema({**rows.select(KEY).schema, FINGERPRINT: FINGERPRINT_TYPE[d.row_hash]})
    if d.lake_hash_by == "pghash":
        return _pghash_fingerprints(rows)
    if d.lake_hash_by == "duckdb":
        return duck.fingerprint(rows, schema)
    return session.frame(sql.lake_fingerprints(d), schema)


def _pghash_fingerprints(rows: pl.DataFrame) -> pl.DataFrame:
    """PostgreSQL's row fingerprint (``sql.row_fingerprint``) computed with ``pghash``."""
    days = rows[KEY[-1]].to_physical().to_numpy().astype(np.int64) - pghash.PG_EPOCH_DAYS
    hashed = pghash.record_hash(rows, days + sql.ROW_SEED_OFFSET)
    return rows.select(KEY).with_columns(pl.Series(FINGERPRINT, hashed))


def check_port(session: Session, d: sql.Dialect) -> None:
    """Fail unless the server fingerprints a probe row as ``pghash`` does (``pghash`` dialects):
    an older server, or one hashing differently, is named instead of every row looking
    changed."""
    if d.lake_hash_by != "pghash":
        return
    probe = _probe_row()
    try:
        got = session.fetchall(sql.probe_fingerprint(d), probe.row(0))[0][0]
    except TerminalError as exc:
        raise TerminalError(
            f"cannot fingerprint rows on this server: {exc}",
            hint="reconciliation needs PostgreSQL 14 or later (hash_record_extended)",
        ) from exc
    want = int(_pghash_fingerprints(probe)[FINGERPRINT][0])
    if got != want:
        raise TerminalError(
            f"the server fingerprints a probe row as {got}, fdp's rewrite of its hashing as "
            f"{want}: rows cannot be reconciled",
            hint="fdp follows PostgreSQL 14-18 on little-endian servers; report the server's "
            "version and platform",
        )


def _probe_row() -> pl.DataFrame:
    """One row with text past 12 bytes, a NULL, zero, a negative and a fraction."""
    values: dict[str, Any] = {}
    for i, col in enumerate(EnrichedStockRecord.columns()):
        dtype = EnrichedStockRecord.polars_schema()[col.name]
        if dtype == pl.String:
            values[col.name] = f"PROBE-{i}-é-{'x' * i}"
        elif dtype == pl.Float64:
            values[col.name] = None if i % 7 == 3 else (i - 10) / 8
        elif dtype == pl.Date:
            values[col.name] = dt.date(1999, 12, 31) + dt.timedelta(days=i * 400)
        elif isinstance(dtype, pl.Datetime):
            values[col.name] = dt.datetime(1969, 7, 20, 20, 17, i, 123_456, tzinfo=dt.UTC)
        else:
            values[col.name] = -(i * 1_000_003) if i % 2 else i
    return pl.DataFrame([values], schema=EnrichedStockRecord.polars_schema())


def segments(per_key: pl.DataFrame) -> pl.DataFrame:
    """Per segment: the row count and the exact (128-bit) sum of the fingerprints."""
    return (
        per_key.lazy()
        .group_by(SEGMENT)
        .agg(pl.len().cast(pl.Int64).alias(ROWS), pl.col(FINGERPRINT).cast(pl.Int128).sum())
        .collect()
    )


@dataclass(frozen=True, slots=True)
class Lake:
    """The lake's side of a comparison: each segment's rows and fingerprint sum, and the
    per-key fingerprints of chosen segments, computed when asked (from the rows again: kept
    for every key they would weigh more than a slice of rows). ``beside`` says whether they
    may be computed while the session runs the warehouse's side (not when the warehouse
    computes them itself)."""

    sums: Callable[[], pl.DataFrame]
    of_segments: Callable[[pl.DataFrame], pl.DataFrame]
    beside: bool

    @classmethod
    def of(
        cls,
        parts: Callable[[], list[pl.DataFrame]],
        rows: Callable[[], Iterable[pl.DataFrame]],
        fingerprint: Callable[[pl.DataFrame], pl.DataFrame],
        *,
        beside: bool,
    ) -> Lake:
        """From per-slice ``segments`` (``parts``, asked for once); ``rows`` iterates the
        slices again for per-key work, ``fingerprint`` fingerprints one."""

        @cache
        def sums() -> pl.DataFrame:
            found = pl.concat(parts())
            return found.group_by(SEGMENT).agg(pl.col(ROWS).sum(), pl.col(FINGERPRINT).sum())

        def of_segments(chosen: pl.DataFrame) -> pl.DataFrame:
            found = [fingerprint(part.join(chosen, on=SEGMENT, how="semi")) for part in rows()]
            return pl.concat(found).join(chosen, on=SEGMENT, how="semi")

        return cls(sums, of_segments, beside)

    def only(self, chosen: pl.DataFrame) -> Lake:
        """This side restricted to the ``chosen`` segments."""
        sums = self.sums

        def chosen_sums() -> pl.DataFrame:
            return sums().join(chosen, on=SEGMENT, how="semi")

        return Lake(chosen_sums, self.of_segments, self.beside)


@dataclass(frozen=True, slots=True)
class Differences:
    """Keys (frames of ``KEY``) where the warehouse differs from the lake rows compared."""

    changed: pl.DataFrame
    missing: pl.DataFrame
    """Lake keys the warehouse lacks."""
    others: pl.DataFrame
    """Warehouse keys inside the ranges that the lake rows compared lack."""
    replaced: pl.DataFrame
    """Segments (``SEGMENT`` columns) whose every stored row inside the ranges is changed."""

    def fail(self, where: str, stands: Stands) -> None:
        """Raise ``ReconciliationError`` unless the only differences are ``others`` that
        ``stands`` allows."""
        fail(
            where,
            changed=self.changed,
            missing_in_warehouse=self.missing,
            extra_in_warehouse=self.others.join(stands(self.others), on=KEY, how="anti"),
        )


def check(
    session: Session,
    d: sql.Dialect,
    lake: Lake,
    ranges: keys.Ranges | None,
    where: str,
    stands: Stands,
) -> None:
    """Raise ``ReconciliationError`` naming the keys of every difference ``compare`` finds."""
    compare(session, d, lake, ranges).fail(where, stands)


def compare(
    session: Session, d: sql.Dialect, lake: Lake, ranges: keys.Ranges | None
) -> Differences:
    """Compare the warehouse's rows with the lake's: over the key ranges (parameters), or,
    with ``ranges`` None, over the staged keys. Segments first; per-key fingerprints only for
    the segments that differ. Each step's lake side is computed on another thread while the
    database computes its own."""
    with ThreadPoolExecutor(1) as pool:

        def beside(work: Callable[..., pl.DataFrame], *args: Any) -> Callable[[], pl.DataFrame]:
            if not lake.beside:
                found = work(*args)
                return lambda: found
            return pool.submit(work, *args).result

        ours = beside(lake.sums)
        params = ranges or ()
        schema = pl.Schema({**SEGMENT_SCHEMA, ROWS: pl.Int64(), FINGERPRINT: pl.Int128()})
        theirs = session.frame(sql.segment_fingerprints(d, ranges is not None), schema, params)
        differing = (
            ours()
            .join(theirs, on=SEGMENT, how="full", coalesce=True, suffix="_stored", nulls_equal=True)
            .filter(
                pl.col(ROWS).ne_missing(pl.col(f"{ROWS}_stored"))
                | pl.col(FINGERPRINT).ne_missing(pl.col(f"{FINGERPRINT}_stored"))
            )
            .select(SEGMENT)
        )
        if not differing.height:
            none = pl.DataFrame(schema=KEY_SCHEMA)
            return Differences(none, none, none, none.select(SEGMENT))
        ours_by_key = beside(lake.of_segments, differing)
        query = sql.fingerprints(d, over_ranges=ranges is not None)
        params = keys.within(ranges, differing) if ranges is not None else ()
        schema = pl.Schema({**KEY_SCHEMA, FINGERPRINT: FINGERPRINT_TYPE[d.row_hash]})
        theirs = session.frame(query, schema, params).join(differing, on=SEGMENT, how="semi")
        both = ours_by_key().join(theirs, on=KEY, how="full", coalesce=True, suffix="_stored")
    stored = pl.col(f"{FINGERPRINT}_stored")
    changed = both.filter(pl.col(FINGERPRINT) != stored).select(KEY)
    kept = both.filter(stored.is_not_null()).select(KEY).join(changed, on=KEY, how="anti")
    return Differences(
        changed=changed,
        missing=both.filter(stored.is_null()).select(KEY),
        others=both.filter(pl.col(FINGERPRINT).is_null()).select(KEY),
        replaced=changed.select(SEGMENT).unique().join(kept, on=SEGMENT, how="anti"),
    )
