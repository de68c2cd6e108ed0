"""The curated lake: partition layout, atomic partition replace, and reads.

Layout (the one place it is defined)::

    curated/stock_prices/year=YYYY/month=MM/part-0.parquet       EnrichedStockRecord rows
    curated/_changes/run_date=YYYY-MM-DD/changes.parquet         keys a run inserted or changed
    curated/_lease                                               the single writer's lease
    curated/_schema.json                                         layout version, indicators kept
    curated/_staging/RUN/year=YYYY/month=MM/part-0.parquet       partitions staged by executors

Each partition is one zstd Parquet file, rows sorted by (symbol, trade_date), small row groups
so a reader filtering on symbol skips most of a file. ``year`` and ``month`` live only in the
path (hive style): files that repeated them would clash with the path for pyarrow, Spark,
Athena and Redshift Spectrum readers (DuckDB reads ``month=04`` as text unless given
``hive_types``). Replacing a partition writes the new file aside under a
hidden name (readers skip names starting with ``.``) and renames it over the old one, so a
reader sees the old or the new partition, never half of one; on an object store a single PUT
has the same property. A partition whose rows do not change is never rewritten.

The schema grows without rewrites: ``_schema.json`` records the layout's version and the
indicators the lake holds over its whole history ("maintained"), which every run keeps up to
date. An indicator registered later is pending: runs write it null until ``fdp backfill
--indicators`` computes it over the history, and a partition written before its column existed
reads it as null. A lake without ``_schema.json`` (version 1) maintains the indicators that
every one of its files holds.

One run writes the lake at a time: every writer holds the lake's lease (``lease``,
``fdp.lease``) for its whole run, reads included, and so does a load (a publish between its
read and its commit would let it commit older rows). Staged names are unique per run; what a
killed run left staged is cleared when the next writer takes the lease, never while another
run may be using it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import inspect
import io
import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import polars as pl
import pyarrow.parquet as pq
from fsspec import AbstractFileSystem

from fdp import indicators
from fdp.config import Settings
from fdp.errors import ConfigError, DataError
from fdp.lease import Lease, hold
from fdp.records import ROW_KEY, EnrichedStockRecord, Frame, check_finite
from fdp.storage import filesystem, is_local, put_bytes

CURATED = "curated"
TABLE = "stock_prices"
CHANGES = "_changes"
SCHEMA = "_schema.json"
SCHEMA_VERSION = 2
"""Version 1: the seed's layout and indicators, no ``_schema.json``; 2: the indicator registry."""
LEASE = "_lease"
STAGING = "_staging"
PARTITION_KEYS = ("year", "month")
FILE_NAME = "part-0.parquet"
KEY = ROW_KEY
KEY_SCHEMA = pl.Schema({"symbol": pl.String(), "trade_date": pl.Date()})
"""The columns of a run's manifest of changed keys."""
ROW_GROUP_ROWS = 16_384
ROW_GROUP_MIN_ROWS = 4_096
"""Row groups hold up to ``ROW_GROUP_ROWS`` rows, and at least this many unless a partition
has fewer: small enough that a reader filtering on symbol skips most of a file. A partition
given fewer rows by one slice keeps them for the next."""
WRITERS = 4
_PARQUET: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 1,
    # Dictionary pages pay off for the symbol only; floats and unique strings would not shrink.
    "use_dictionary": ["symbol"],
    "write_statistics": True,
}
"""How every partition file is written (pyarrow writer options)."""

Partition = tuple[int, int]
_STAGED = ".*.tmp"
"""Names of staged files on a local disk (hidden: readers skip them)."""
P = ParamSpec("P")
R = TypeVar("R")
Stage = Callable[Concatenate[Settings, P], R]
"""A stage: a function of the settings (and a run date, and so on)."""


def table_url(settings: Settings) -> str:
    return settings.path(CURATED, TABLE)


def partition_url(settings: Settings, partition: Partition) -> str:
    year, month = partition
    return f"{table_url(settings)}/year={year:04d}/month={month:02d}/{FILE_NAME}"


def changes_url(settings: Settings, run_date: dt.date) -> str:
    return settings.path(CURATED, CHANGES, f"run_date={run_date.isoformat()}", "changes.parquet")


def lease(settings: Settings, purpose: str) -> contextlib.AbstractContextManager[Lease]:
    """The lake's single-writer lease, for the block (re-entrant: a writer inside a holder's
    block joins it). Taking it clears what killed writers left staged: no live run is writing."""
    return hold(settings.path(CURATED, LEASE), settings, purpose, lambda: _clear_staged(settings))


def leased(stage: str) -> Callable[[Stage[P, R]], Stage[P, R]]:
    """Run the decorated stage (its first argument the lake's settings) holding the lake's
    lease, named for the stage and its ``run_date``."""

    def decorate(run: Stage[P, R]) -> Stage[P, R]:
        signature = inspect.signature(run)

        @functools.wraps(run)
        def under_lease(settings: Settings, /, *args: P.args, **kwargs: P.kwargs) -> R:
            day = signature.bind_partial(settings, *args, **kwargs).arguments.get("run_date")
            with lease(settings, stage if day is None else f"{stage} {day}"):
                return run(settings, *args, **kwargs)

        return under_lease

    return decorate


def _clear_staged(settings: Settings) -> None:
    """Remove what killed runs left staged (hidden ``.*.tmp`` files beside partitions and
    manifests on a local disk, and executors' staging directories): called with the lease
    just taken, so no live run is writing them."""
    fs, root = filesystem(settings.path(CURATED), settings)
    if is_local(fs):
        for pattern in (f"{TABLE}/year=*/month=*/{_STAGED}", f"{CHANGES}/run_date=*/{_STAGED}"):
            for leftover in Path(root).glob(pattern):
                leftover.unlink(missing_ok=True)
    with contextlib.suppress(FileNotFoundError):
        fs.rm(f"{root}/{STAGING}", recursive=True)


def file_columns() -> list[str]:
    """The columns stored inside a partition file (the record minus the path's keys)."""
    return [n for n in EnrichedStockRecord.names() if n not in PARTITION_KEYS]


def maintained(settings: Settings) -> tuple[str, ...]:
    """The indicators the lake holds over its whole history (registry order): what a run
    computes. A new lake maintains every registered indicator."""
    fs, path = _schema_file(settings)
    if fs.exists(path):
        recorded = json.loads(fs.cat_file(path))
        if recorded.get("version", 0) > SCHEMA_VERSION:
            raise DataError(
                f"{path}: lake schema version {recorded.get('version')} is newer than this "
                f"fdp's ({SCHEMA_VERSION})",
                file=path,
                hint="upgrade fdp before writing to this lake",
            )
        names = set(recorded.get("indicators", ()))
        unknown = sorted(names - set(indicators.columns()))
        if unknown:  # writing without them would drop their columns from rewritten partitions
            raise ConfigError(
                f"{path}: the lake maintains indicator(s) {unknown}, not registered here",
                hint="set FDP_INDICATORS to the module(s) declaring them, or install their package",
            )
    else:  # version 1 (no file): what every partition holds; a new lake: everything
        names = set(indicators.columns())
        for partition in partitions(settings):
            names &= set(_file_columns(settings, partition))
    return tuple(n for n in indicators.columns() if set(indicators.with_dependencies([n])) <= names)


def record_maintained(settings: Settings, names: Iterable[str]) -> None:
    """Record the lake's schema version and maintained indicators (one atomic write)."""
    fs, path = _schema_file(settings)
    chosen = [n for n in indicators.columns() if n in set(names)]
    body = {"version": SCHEMA_VERSION, "indicators": chosen}
    put_bytes(fs, path, json.dumps(body, indent=2).encode())


def _schema_file(settings: Settings) -> tuple[AbstractFileSystem, str]:
    return filesystem(settings.path(CURATED, SCHEMA))


def _file_columns(settings: Settings, partition: Partition) -> list[str]:
    fs, path = filesystem(partition_url(settings, partition))
    with fs.open(path, "rb") as handle:
        return list(pq.read_schema(handle).names)


def partitions(settings: Settings) -> list[Partition]:
    """The partitions that hold a file, oldest first."""
    fs, root = filesystem(table_url(settings))
    found = fs.glob(f"{root}/year=*/month=*/{FILE_NAME}") if fs.exists(root) else []
    parsed = []
    for path in found:
        year, month = (part.split("=", 1)[1] for part in str(path).split("/")[-3:-1])
        parsed.append((int(year), int(month)))
    return sorted(parsed)


def read_partition(
    settings: Settings, partition: Partition, symbols: Iterable[str] | None = None
) -> pl.DataFrame:
    """The rows of one partition (optionally only ``symbols``), as EnrichedStockRecord columns."""
    fs, path = filesystem(partition_url(settings, partition))
    with fs.open(path, "rb") as handle:
        df = _upgraded(pl.read_parquet(handle), path)
    if symbols is not None:
        # A month holds at most ~100k rows: filtering after the read is far cheaper than an
        # Arrow ``in`` filter over thousands of symbols (a daily run asks for all of them).
        df = df.filter(pl.col("symbol").is_in(pl.Series(list(symbols), dtype=pl.String).implode()))
    year, month = partition
    df = df.with_columns(
        pl.lit(year, pl.Int32).alias("year"), pl.lit(month, pl.Int32).alias("month")
    )
    return df.select(EnrichedStockRecord.names())


def _upgraded(df: pl.DataFrame, path: str) -> pl.DataFrame:
    """A partition file's rows in today's columns: an indicator column the file predates reads
    as null; any other missing or retyped column is a ``DataError`` naming the file."""
    schema = EnrichedStockRecord.polars_schema()
    wanted = file_columns()
    missing = [n for n in wanted if n not in df.columns]
    lost = [n for n in missing if n not in indicators.columns()]
    retyped = [n for n in wanted if n in df.columns and df.schema[n] != schema[n]]
    if lost or retyped:
        what = f"lacks column(s) {lost}" if lost else f"has column(s) {retyped} of another type"
        raise DataError(
            f"{path}: partition {what}: not a layout this fdp can read or upgrade",
            file=path,
            field=(lost or retyped)[0],
            hint="rebuild the partition's months from the raw zone (fdp backfill --force)",
        )
    if missing:
        df = df.with_columns(pl.lit(None, pl.Float64).alias(n) for n in missing)
    return df


def scan(settings: Settings) -> pl.LazyFrame:
    """The whole curated table, lazily, with ``year`` and ``month`` from the paths."""
    found = partitions(settings)
    if not found:
        return Frame.empty(EnrichedStockRecord).df.lazy()
    urls = [partition_url(settings, p) for p in found]
    return scan_files(settings, urls).select(EnrichedStockRecord.names())


def scan_files(
    settings: Settings, urls: list[str], schema: pl.Schema | None = None
) -> pl.LazyFrame:
    """Month files (``urls``, hive ``year``/``month`` in their paths) as one lazy table of the
    file columns ``schema`` (the curated record's by default) plus ``year`` and ``month``: a
    file that predates a column reads it as null, a column no longer wanted is left out. On a
    local disk Polars scans them and prunes row groups by their statistics; on an object store
    each is read through the lake's filesystem (its endpoint and region settings)."""
    if schema is None:
        record = EnrichedStockRecord.polars_schema()
        schema = pl.Schema({n: record[n] for n in file_columns()})
    hive = {"year": pl.Int32(), "month": pl.Int32()}
    fs, _ = filesystem(urls[0], settings)
    if is_local(fs):
        return pl.scan_parquet(
            urls,
            hive_partitioning=True,
            hive_schema=hive,
            schema=schema,
            missing_columns="insert",
            extra_columns="ignore",
        )
    frames = []
    for url in urls:
        _, path = filesystem(url, settings)
        year, month = (int(part.split("=", 1)[1]) for part in path.split("/")[-3:-1])
        with fs.open(path, "rb") as handle:
            rows = pl.read_parquet(handle)
        frames.append(
            rows.select(
                (pl.col(n) if n in rows.columns else pl.lit(None)).cast(t).alias(n)
                for n, t in schema.items()
            ).with_columns(
                pl.lit(year, pl.Int32).alias("year"), pl.lit(month, pl.Int32).alias("month")
            )
        )
    return pl.concat(frames).lazy()


def read_history(settings: Settings, wanted: pl.DataFrame, rows_before: int) -> pl.DataFrame:
    """Per symbol of ``wanted`` (symbol, from_date): its rows from ``from_date`` on and the
    ``rows_before`` rows before it; its whole history when ``from_date`` is null.

    Partitions are read newest first, each filtered to the symbols still short of history,
    so a daily run reads a few recent partitions and not the whole lake.
    """
    plan = wanted.select("symbol", "from_date")
    pending = set(plan["symbol"].to_list())
    have = pl.DataFrame(schema={"symbol": pl.String, "before": pl.UInt32})
    frames = []
    for partition in reversed(partitions(settings)):
        if not pending:
            break
        rows = read_partition(settings, partition, pending)
        frames.append(rows)
        counts = (
            rows.join(plan, on="symbol")
            .filter(pl.col("trade_date") < pl.col("from_date"))
            .group_by("symbol")
            .len("before")
        )
        have = pl.concat([have, counts]).group_by("symbol").agg(pl.col("before").sum())
        pending -= set(have.filter(pl.col("before") >= rows_before)["symbol"].to_list())
    if not frames:
        return Frame.empty(EnrichedStockRecord).df
    history = pl.concat(frames).join(plan, on="symbol")
    day, start = pl.col("trade_date"), pl.col("from_date")
    prior = (
        history.filter(day < start)
        .sort(KEY)
        .group_by("symbol", maintain_order=True)
        .tail(rows_before)
    )
    recent = history.filter(start.is_null() | (day >= start))
    return (
        pl.concat([recent, prior.select(recent.columns)])
        .sort(KEY)
        .select(EnrichedStockRecord.names())
    )


@dataclass(slots=True)
class StagedRun:
    """What a transform run staged: the full new content of each partition it changes, and
    its manifest of changed keys. Nothing of it is visible until ``publish``."""

    run_date: dt.date
    partitions: dict[Partition, StagedFile]
    changes: StagedFile


def upsert(
    settings: Settings,
    slices: Iterable[Frame[EnrichedStockRecord]],
    on_partition: Callable[[Partition], None] | None = None,
) -> list[Partition]:
    """Insert or replace the rows of ``slices`` by key (see ``stage``) and publish them."""
    with lease(settings, "upsert"):
        staged = stage(settings, slices)
        return _publish_partitions(settings, staged, on_partition)


def stage(
    settings: Settings, slices: Iterable[Frame[EnrichedStockRecord]]
) -> dict[Partition, StagedFile]:
    """The new content of each partition the rows of ``slices`` touch, staged: the rows
    inserted or replacing the stored ones of their key.

    ``slices`` come in key order (each sorted by key, each one's symbols after the previous
    one's), so they stream straight into one staged file per partition and the whole batch is
    never held at once; a staged partition that already exists is then merged with its
    stored rows. Called under the lake's lease (the stored rows must not move meanwhile).
    """
    fs, root = filesystem(table_url(settings))
    existing = set(partitions(settings))
    staged = _stage(fs, root, (check_finite(s, table_url(settings)) for s in slices))

    def merged(partition: Partition) -> tuple[Partition, StagedFile]:
        new = staged[partition]
        if partition not in existing:
            return partition, new
        rows = _read_staged(fs, new)
        if isinstance(new, str):
            fs.rm(new)
        return partition, _stage_file(settings, partition, _merge(settings, partition, rows))

    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        return dict(pool.map(merged, sorted(staged)))


def stage_partition(settings: Settings, partition: Partition, rows: pl.DataFrame, run: str) -> str:
    """Stage the new content of ``partition`` given its changed ``rows`` (any order) as a
    file under the run's staging directory, and return its path there. This is how a Spark
    executor stages what it computed: in the lake's own file format, not Spark's."""
    frame = check_finite(
        Frame(EnrichedStockRecord, rows, origin="changed rows"), table_url(settings)
    )
    fs, root = filesystem(settings.path(CURATED, STAGING, run))
    year, month = partition
    path = f"{root}/year={year:04d}/month={month:02d}/{FILE_NAME}"
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    with fs.open(path, "wb") as handle:
        _write_table(_merge(settings, partition, frame.df.sort(KEY)), handle)
    return path


def publish(
    settings: Settings,
    run: StagedRun,
    on_partition: Callable[[Partition], None] | None = None,
) -> list[Partition]:
    """Make a run's staged partitions and then its manifest the lake's, each in one rename
    (or a single PUT or copy on an object store) and only while the lease is held: a reader
    sees a partition old or new, never half of one, and a load never sees a manifest whose
    rows are not published yet."""
    with lease(settings, f"publish {run.run_date}"):
        fs, path = _schema_file(settings)
        if not fs.exists(path):  # before the swap: a new lake maintains every indicator
            record_maintained(settings, maintained(settings))
        touched = _publish_partitions(settings, run.partitions, on_partition)
        _put_into_place(settings, run.changes, changes_url(settings, run.run_date))
        with contextlib.suppress(FileNotFoundError):
            fs, root = filesystem(settings.path(CURATED, STAGING), settings)
            fs.rm(root, recursive=True)
        return touched


def _publish_partitions(
    settings: Settings,
    staged: dict[Partition, StagedFile],
    on_partition: Callable[[Partition], None] | None,
) -> list[Partition]:
    with lease(settings, "publish") as held:

        def swap(partition: Partition) -> Partition:
            held.check()
            _put_into_place(settings, staged[partition], partition_url(settings, partition))
            return partition

        touched = sorted(staged)
        with ThreadPoolExecutor(max_workers=WRITERS) as pool:
            for done in pool.map(swap, touched):
                if on_partition is not None:
                    on_partition(done)
        return touched


def _put_into_place(settings: Settings, staged: StagedFile, url: str) -> None:
    fs, target = filesystem(url, settings)
    if isinstance(staged, _Buffer):
        put_bytes(fs, target, staged.getvalue())
        return
    fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
    fs.mv(staged, target)


def _merge(settings: Settings, partition: Partition, rows: pl.DataFrame) -> pl.DataFrame:
    """``rows`` (sorted by key) with the stored rows of ``partition`` whose key they lack."""
    fs, path = filesystem(partition_url(settings, partition))
    if not fs.exists(path):
        return rows
    old = read_partition(settings, partition).select(rows.columns)
    return pl.concat([old.join(rows, on=KEY, how="anti"), rows]).sort(KEY)


class _Buffer(io.BytesIO):
    """An in-memory staged file that outlives the writer closing it."""

    def close(self) -> None:
        """Kept open: the bytes are read after the writer is done."""


StagedFile = str | _Buffer
"""A staged file: a path on the lake's filesystem, or bytes to PUT on an object store."""


def _stage(
    fs: AbstractFileSystem, root: str, slices: Iterable[Frame[EnrichedStockRecord]]
) -> dict[Partition, StagedFile]:
    """Stream ``slices`` into one Parquet file per partition: a hidden file beside the
    partition's on a local disk (a crash leaves the lake as it was), a buffer otherwise.

    A pool of threads encodes a slice's row groups while the next slice is computed; a slice
    is handed over only once the previous one is written, so each file gets its rows in order
    and at most two slices are held.
    """
    files = _StagedFiles(fs, root)
    try:
        with ThreadPoolExecutor(max_workers=WRITERS) as pool:
            writing: list[Future[None]] = []
            for frame in slices:
                files.add(frame.df)
                _wait(writing)
                writing = [pool.submit(files.write, *job) for job in files.ready(final=False)]
                files.keep_rest()
            _wait(writing)
            _wait([pool.submit(files.write, *job) for job in files.ready(final=True)])
    finally:
        files.close()
    return files.staged


class _StagedFiles:
    """The staged file of each partition, appended to a row group at a time."""

    def __init__(self, fs: AbstractFileSystem, root: str) -> None:
        self.fs, self.root, self.local = fs, root, is_local(fs)
        self.run = uuid.uuid4().hex
        self.staged: dict[Partition, StagedFile] = {}
        self.writers: dict[Partition, pq.ParquetWriter] = {}
        self.pending: dict[Partition, list[pl.DataFrame]] = {}

    def add(self, df: pl.DataFrame) -> None:
        for partition, rows in _by_partition(df):
            self.pending.setdefault(partition, []).append(rows)

    def ready(self, final: bool) -> list[tuple[Partition, list[pl.DataFrame]]]:
        """The partitions holding enough rows for a row group (all of them at the end),
        taken out."""
        full = [
            p
            for p, chunks in self.pending.items()
            if final or sum(map(len, chunks)) >= ROW_GROUP_MIN_ROWS
        ]
        return [(p, self.pending.pop(p)) for p in full]

    def keep_rest(self) -> None:
        """Copy the rows left waiting for the next slice: a view would keep the whole slice."""
        for partition, chunks in self.pending.items():
            self.pending[partition] = [_copied(pl.concat(chunks, rechunk=False))]

    def write(self, partition: Partition, chunks: list[pl.DataFrame]) -> None:
        table = pl.concat(chunks, rechunk=False).to_arrow()
        if partition not in self.writers:
            self.staged[partition] = self._target(partition)
            self.writers[partition] = pq.ParquetWriter(
                self.staged[partition], table.schema, **_PARQUET
            )
        self.writers[partition].write_table(table, row_group_size=ROW_GROUP_ROWS)

    def _target(self, partition: Partition) -> StagedFile:
        if not self.local:
            return _Buffer()
        year, month = partition
        directory = f"{self.root}/year={year:04d}/month={month:02d}"
        self.fs.makedirs(directory, exist_ok=True)
        return f"{directory}/.{FILE_NAME}.{self.run}.tmp"

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


def _by_partition(df: pl.DataFrame) -> Iterator[tuple[Partition, pl.DataFrame]]:
    """The file columns of ``df``'s rows per partition, each in ``df``'s order: one stable
    sort by partition, then zero-copy slices (twice as fast as ``partition_by``)."""
    ordered = df.select(*PARTITION_KEYS, *file_columns()).sort(*PARTITION_KEYS, maintain_order=True)
    runs = ordered.group_by(*PARTITION_KEYS, maintain_order=True).len()
    start = 0
    for year, month, rows in runs.iter_rows():
        yield (year, month), ordered.slice(start, rows).drop(*PARTITION_KEYS)
        start += rows


def _copied(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` in buffers of its own (a slice or a concatenation shares its sources')."""
    return df.select(pl.all().gather(pl.int_range(pl.len())))


def _wait(futures: list[Future[None]]) -> None:
    for future in futures:
        future.result()


def read_staged(settings: Settings, staged: StagedFile) -> pl.DataFrame:
    """The rows of a staged partition file (before ``publish`` makes it the lake's)."""
    fs, _ = filesystem(table_url(settings), settings)
    return _read_staged(fs, staged)


def _read_staged(fs: AbstractFileSystem, staged: StagedFile) -> pl.DataFrame:
    if isinstance(staged, str):
        with fs.open(staged, "rb") as handle:
            return pl.read_parquet(handle)
    return pl.read_parquet(io.BytesIO(staged.getvalue()))


def _write_table(rows: pl.DataFrame, sink: Any) -> None:
    """Write a partition file's rows the one way the lake's files are written."""
    table = rows.select(file_columns()).to_arrow()
    pq.write_table(table, sink, row_group_size=ROW_GROUP_ROWS, **_PARQUET)


def _stage_file(settings: Settings, partition: Partition, rows: pl.DataFrame) -> StagedFile:
    """``rows`` written as a staged file of ``partition``: hidden beside the partition's file
    on a local disk (readers skip it), a buffer for an object store."""
    fs, path = filesystem(partition_url(settings, partition))
    if not is_local(fs):
        buffer = _Buffer()
        _write_table(rows, buffer)
        return buffer
    directory, name = path.rsplit("/", 1)
    fs.makedirs(directory, exist_ok=True)
    tmp = f"{directory}/.{name}.{uuid.uuid4().hex}.tmp"
    _write_table(rows, tmp)
    return tmp


def stage_changes(keys: pl.DataFrame) -> _Buffer:
    """A run's manifest: the (symbol, trade_date) keys it inserted or recomputed, which the
    warehouse load reads. ``keys`` come unique and sorted (as the plan yields them), so a
    re-run stages the same bytes."""
    buffer = _Buffer()
    keys.select(KEY).write_parquet(buffer, compression="zstd")
    return buffer


def stage_changes_file(settings: Settings, run: str, keys: pl.DataFrame) -> str:
    """``stage_changes`` as a file under the run's staging directory (an executor's)."""
    fs, root = filesystem(settings.path(CURATED, STAGING, run))
    fs.makedirs(root, exist_ok=True)
    path = f"{root}/{CHANGES}.parquet"
    with fs.open(path, "wb") as handle:
        handle.write(stage_changes(keys).getvalue())
    return path


def write_changes(settings: Settings, run_date: dt.date, keys: pl.DataFrame) -> None:
    """Replace run ``run_date``'s manifest with ``keys`` (see ``stage_changes``)."""
    with lease(settings, f"write changes {run_date}"):
        _put_into_place(settings, stage_changes(keys), changes_url(settings, run_date))


def changed_keys(settings: Settings, run_date: dt.date) -> pl.DataFrame:
    """The keys of run ``run_date`` (empty when that run wrote no manifest)."""
    fs, path = filesystem(changes_url(settings, run_date))
    if not fs.exists(path):
        return pl.DataFrame(schema=KEY_SCHEMA)
    with fs.open(path, "rb") as handle:
        return pl.read_parquet(handle)
