"""The version history of curated rows: what ``as_of`` reads (``fdp.data``).

When a run replaces a curated row (a restated bar, a late correction, and every later row of
the symbol whose indicators that changed), the row it replaces is kept here with
``valid_to``: the ingest date of the run that replaced it. Layout, beside the lake's table::

    curated/stock_prices_history/year=YYYY/month=MM/part-0.parquet

one file per month of ``trade_date`` (the lake's partitions), rows sorted by (symbol,
trade_date, valid_to), so a read of some symbols and months reads the same few files and row
groups in both datasets.

Why this shape: restatements are rare, so a version history costs only the replaced rows, not
a copy of the lake per ingest. A version's start is not stored: the first version of a key
appeared with the batch of its ``ingest_date``, and each later one when the previous was
replaced; so the version of a key valid as of ingest date D is the one with the smallest
``valid_to`` > D among those with ``ingest_date`` <= D, the current row counting as
``valid_to`` = infinity (see ``fdp.data.read``). That holds when batches are transformed in
ingest-date order, as ``fdp run``, ``fdp backfill`` and the DAG do; a batch transformed after
a later one is recorded at its own ingest date.

Writes happen in the transform, under the lake's lease, before the staged partitions are
swapped in: the replaced rows are found by comparing each staged partition with the stored
one (engine-independent: it reads the lake's own files). A partition whose rows do not change
is never staged, so a re-run records nothing; a run killed after this step records the same
rows again on its re-run, and rows already held (same key, same ``valid_to``) are not added
twice, so the history is written idempotently.
"""

from __future__ import annotations

import datetime as dt
import io
from concurrent.futures import ThreadPoolExecutor

import polars as pl
import pyarrow.parquet as pq

from fdp import lake
from fdp.config import Settings
from fdp.records import EnrichedStockRecord
from fdp.storage import filesystem, put_bytes

TABLE = "stock_prices_history"
VALID_TO = "valid_to"
"""The ingest date of the run that replaced a version: the version was current before it."""
VERSION_KEY = [*lake.KEY, VALID_TO]
_PARQUET_OPTIONS = {"compression": "zstd", "use_dictionary": ["symbol"], "write_statistics": True}


def table_url(settings: Settings) -> str:
    return settings.path(lake.CURATED, TABLE)


def partition_url(settings: Settings, partition: lake.Partition) -> str:
    year, month = partition
    return f"{table_url(settings)}/year={year:04d}/month={month:02d}/{lake.FILE_NAME}"


def file_columns() -> list[str]:
    """The columns of a history file: the lake's file columns and ``valid_to``."""
    return [*lake.file_columns(), VALID_TO]


def partitions(settings: Settings) -> list[lake.Partition]:
    """The months that hold a history file, oldest first."""
    fs, root = filesystem(table_url(settings), settings)
    if not fs.exists(root):
        return []
    found = fs.glob(f"{root}/year=*/month=*/{lake.FILE_NAME}")
    return sorted(
        (int(year), int(month))
        for year, month in (
            (part.split("=", 1)[1] for part in str(path).split("/")[-3:-1]) for path in found
        )
    )


def record(settings: Settings, run: lake.StagedRun) -> int:
    """Keep the stored rows that ``run``'s staged partitions replace, with ``valid_to`` = the
    run's date; return how many versions were added. Called under the lake's lease, before
    ``lake.publish``."""
    stored = set(lake.partitions(settings))
    touched = [p for p in sorted(run.partitions) if p in stored]

    def one(partition: lake.Partition) -> int:
        new = lake.read_staged(settings, run.partitions[partition])
        old = lake.read_partition(settings, partition).select(lake.file_columns())
        return _append(
            settings,
            partition,
            replaced(old, new).with_columns(pl.lit(run.run_date).alias(VALID_TO)),
        )

    with ThreadPoolExecutor(max_workers=lake.WRITERS) as pool:
        return sum(pool.map(one, touched))


def replaced(old: pl.DataFrame, new: pl.DataFrame) -> pl.DataFrame:
    """The rows of ``old`` whose key ``new`` holds with any other value (an unchanged row is
    staged as the stored row itself, processing timestamp included)."""
    columns = [c for c in old.columns if c not in lake.KEY]
    joined = old.join(new.select(old.columns), on=lake.KEY, how="inner", suffix="_new")
    differs = pl.lit(False)
    for column in columns:
        differs |= pl.col(column).ne_missing(pl.col(f"{column}_new"))
    return joined.filter(differs).select(old.columns)


def _append(settings: Settings, partition: lake.Partition, versions: pl.DataFrame) -> int:
    """Add ``versions`` to the month's history file (those it lacks), in one atomic write."""
    if versions.is_empty():
        return 0
    held = read_partition(settings, partition)
    added = versions.join(held, on=VERSION_KEY, how="anti")
    if added.is_empty():
        return 0
    # Versions kept before a column was added to the record read it as null.
    rows = pl.concat([held, added], how="diagonal").select(file_columns()).sort(VERSION_KEY)
    sink = io.BytesIO()
    pq.write_table(rows.to_arrow(), sink, row_group_size=lake.ROW_GROUP_ROWS, **_PARQUET_OPTIONS)
    fs, path = filesystem(partition_url(settings, partition), settings)
    put_bytes(fs, path, sink.getvalue())
    return added.height


def read_partition(settings: Settings, partition: lake.Partition) -> pl.DataFrame:
    """The versions held for one month (empty, with the history's columns, when none)."""
    fs, path = filesystem(partition_url(settings, partition), settings)
    if not fs.exists(path):
        return pl.DataFrame(schema=schema())
    with fs.open(path, "rb") as handle:
        return pl.read_parquet(handle)


def schema() -> pl.Schema:
    """The Polars schema of a history file."""
    full = EnrichedStockRecord.polars_schema()
    return pl.Schema({**{n: full[n] for n in lake.file_columns()}, VALID_TO: pl.Date()})


def versions_replaced_on(settings: Settings, run_date: dt.date) -> pl.DataFrame:
    """Every version the run of ``run_date`` replaced, as ``EnrichedStockRecord`` columns and
    ``valid_to`` (what a warehouse load adds)."""
    names = [*EnrichedStockRecord.names(), VALID_TO]
    frames = [
        read_partition(settings, (year, month))
        .filter(pl.col(VALID_TO) == run_date)
        .with_columns(pl.lit(year, pl.Int32).alias("year"), pl.lit(month, pl.Int32).alias("month"))
        .select(names)
        for year, month in partitions(settings)
    ]
    if frames:
        return pl.concat(frames)
    full = EnrichedStockRecord.polars_schema()
    return pl.DataFrame(schema={**full, VALID_TO: pl.Date()})
