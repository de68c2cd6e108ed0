"""The Spark engine: the transform's plan on a Spark cluster, ``local[*]`` or Spark Connect.

The driver only lists the batch's objects and plans jobs; everything proportional to the batch
stays on the executors:

1. *read*: each task reads and parses raw objects with the raw zone's own reader and returns
   their rows plus one digest row per object (the driver collects the digests, one per object,
   to pass the batch's fingerprint to the gate);
2. *plan*: one shuffle puts whole symbols together (a range partitioning, so a task's symbols
   are neighbours and its lake reads skip most row groups); each task runs the plan of
   ``fdp.transform.plan`` over its symbols, reading their stored state from the lake, writes
   its changed rows (per partition) and manifest keys as fragment files in the run's staging
   directory, and returns only the partitions it touched, its rejected rows and its counts
   (passing millions of wide rows back through the JVM cost more than the plan itself);
3. *stage*: a task per changed ``year=/month=`` partition reads its fragments, merges them
   with the stored partition and writes the staged file with the lake's own writer (codec,
   row groups, sort order and schema are the lake's by construction); one task sorts the
   keys' fragments into the manifest.

The driver collects the staged paths (one per partition), the counts and the rejected rows,
and the stage publishes the staged files. Every task is deterministic (raw objects are
immutable, the lake does not move under the lease, the processing time is fixed per run), so a
task retried after an executor is lost recomputes the same files.
"""

from __future__ import annotations

import datetime as dt
import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa

from fdp import lake
from fdp.config import Settings
from fdp.engines import Staged, TransformJob
from fdp.records import EnrichedStockRecord, Frame, Record, StockRecord
from fdp.sources.landing import RawZone, batch_fingerprint, object_name
from fdp.spark_session import collect_arrow, parallelism, shuffle_partitions, spark_struct
from fdp.storage import filesystem, put_bytes
from fdp.transform import plan

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

KIND = "_kind"
FRAGMENT, REJECTED, COUNTS = 0, 2, 3
"""What a row of the plan's output is: a partition the task wrote changed rows of, a rejected
row, or the task's counts."""
_OBJECT, _DIGEST, _ROWS = "_object", "_digest", "_rows"
_COMPUTED, _WRITTEN = "_computed", "_written"


def _nullable(*fields: pa.Field) -> list[pa.Field]:
    return [f.with_nullable(True) for f in fields]


READ_SCHEMA = pa.schema(
    _nullable(
        *StockRecord.arrow_schema(),
        pa.field(_OBJECT, pa.string()),
        pa.field(_DIGEST, pa.string()),
        pa.field(_ROWS, pa.int64()),
    )
)
"""A read task's rows: the bars, and one row per object with its name, digest and row count."""

PLAN_SCHEMA = pa.schema(
    _nullable(
        *StockRecord.arrow_schema(),
        pa.field("rule", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("year", pa.int32()),
        pa.field("month", pa.int32()),
        pa.field(_ROWS, pa.int64()),
        pa.field(_COMPUTED, pa.int64()),
        pa.field(_WRITTEN, pa.int64()),
        pa.field(KIND, pa.int32()),
    )
)
"""A plan task's rows, each of one ``KIND`` (the other columns null): few of them, since the
changed rows and manifest keys go to files (``_fragments``), not back through the JVM."""

POSITION = "_position"
POSITIONED_SCHEMA = pa.schema(
    _nullable(*StockRecord.arrow_schema(), pa.field(POSITION, pa.int64()))
)
"""The bars of a batch, each with its place in it (``positioned``)."""

STAGED_SCHEMA = pa.schema(
    [pa.field("year", pa.int32()), pa.field("month", pa.int32()), pa.field("path", pa.string())]
)


@dataclass(frozen=True, slots=True)
class _Task:
    """What a task needs of the job (its settings, run, gate's rejections), shipped to it."""

    settings: Settings
    run_date: dt.date
    processed_at: dt.datetime
    gate_rejected: pl.DataFrame
    staging: str


@dataclass(frozen=True, slots=True)
class SparkBatch:
    """A raw batch on the executors: its StockRecord rows, their count and the fingerprint
    of the objects they were parsed from; ``cached`` is what to unpersist when done."""

    frame: DataFrame
    rows: int
    fingerprint: str
    cached: DataFrame
    objects: tuple[str, ...]
    """The objects' names in the raw zone's order (a Polars read's: see ``positioned``)."""


@dataclass(slots=True)
class SparkEngine:
    """The transform on ``session``'s cluster."""

    session: SparkSession
    name: str = "spark"

    def stage(self, job: TransformJob) -> Staged:
        raw = self.read(job.settings, job.source, job.run_date)
        admission = job.admit(raw.fingerprint)
        task = _Task(
            job.settings,
            job.run_date,
            job.processed_at,
            admission.rejected,
            uuid.uuid4().hex,
        )
        tasks = shuffle_partitions(raw.rows, parallelism(self.session))
        planned = raw.frame.repartitionByRange(tasks, _upper("symbol")).mapInArrow(
            partial(_plan_task, task=task), spark_struct(PLAN_SCHEMA)
        )
        try:
            out = pl.DataFrame(collect_arrow(planned))
        finally:
            raw.cached.unpersist()
        counts = out.filter(pl.col(KIND) == COUNTS).select(_ROWS, _COMPUTED, _WRITTEN).sum()
        months = out.filter(pl.col(KIND) == FRAGMENT).select(*lake.PARTITION_KEYS).unique()
        partitions = self._stage_partitions(task, sorted(months.iter_rows()))
        changes = self._stage_changes(task)
        rejected = out.filter(pl.col(KIND) == REJECTED)
        return Staged(
            rows_in=int(counts[_ROWS].item() or 0),
            rejected=_rows(rejected.to_arrow(), StockRecord, "rule", "reason").sort(
                "source_file", "symbol", "timestamp", "rule"
            ),
            computed=int(counts[_COMPUTED].item() or 0),
            written=int(counts[_WRITTEN].item() or 0),
            run=lake.StagedRun(job.run_date, partitions, changes),
            gate_overridden=admission.overridden,
        )

    def _stage_partitions(
        self, task: _Task, months: list[tuple[int, int]]
    ) -> dict[lake.Partition, lake.StagedFile]:
        """Each partition the plan changed, merged with its stored rows and staged in the
        lake's format by a task of its own (its fragments read from files)."""
        if not months:
            return {}
        frame = self.session.createDataFrame(months, "year int, month int")
        staged = (
            frame.repartition(min(len(months), 2 * parallelism(self.session)))
            .mapInArrow(partial(_stage_task, task=task), spark_struct(STAGED_SCHEMA))
            .collect()
        )
        return {(int(r["year"]), int(r["month"])): str(r["path"]) for r in staged}

    def _stage_changes(self, task: _Task) -> str:
        """The run's manifest, its keys' fragments sorted into one file by one task."""
        one = self.session.createDataFrame([(0,)], "task int")
        (written,) = one.mapInArrow(partial(_manifest_task, task=task), "path string").collect()
        return str(written["path"])

    def read(self, settings: Settings, source: str, run_date: dt.date) -> SparkBatch:
        """The raw batch of (``source``, ``run_date``), read and parsed by the executors with
        the raw zone's own reader, and its fingerprint (from one digest per object)."""
        objects = RawZone(settings).objects(source, run_date)
        tasks = max(1, min(len(objects), 2 * parallelism(self.session)))
        paths = self.session.createDataFrame([(p,) for p in objects], "path string")
        read = partial(_read_task, settings=settings, run_date=run_date)
        raw = paths.repartition(tasks).mapInArrow(read, spark_struct(READ_SCHEMA)).persist()
        meta = raw.filter(raw[_DIGEST].isNotNull()).select(_OBJECT, _DIGEST, _ROWS).collect()
        return SparkBatch(
            raw.filter(raw[_DIGEST].isNull()).select(StockRecord.names()),
            rows=sum(int(m[_ROWS]) for m in meta),
            fingerprint=batch_fingerprint({m[_OBJECT]: m[_DIGEST] for m in meta}),
            cached=raw,
            objects=tuple(object_name(p) for p in objects),
        )


def positioned(batch: SparkBatch) -> DataFrame:
    """The batch's rows with ``POSITION``, their place in a Polars read of the batch (their
    object's place in ``objects``, then their place in the object): what executors return
    can then be put in the order the Polars engine gives. One narrow pass over the cached
    read, where each object's rows follow its digest row in one task."""
    index = {name: i for i, name in enumerate(batch.objects)}
    return batch.cached.mapInArrow(
        partial(_position_task, index=index), spark_struct(POSITIONED_SCHEMA)
    )


def _upper(column: str) -> Column:
    from pyspark.sql import functions as sf

    return sf.upper(sf.col(column))


def _rows(table: pa.Table, record: type[Record], *extra: str) -> pl.DataFrame:
    """``table``'s columns as ``record``'s Polars types (plus ``extra`` as they come)."""
    df = pl.DataFrame(table)
    schema = record.polars_schema()
    return df.select(*(pl.col(n).cast(t) for n, t in schema.items()), *extra)


# What runs in the executors' Python workers.


def _read_task(
    batches: Iterator[pa.RecordBatch], *, settings: Settings, run_date: dt.date
) -> Iterator[pa.RecordBatch]:
    zone = RawZone(settings)
    for batch in batches:
        for path in batch.column("path").to_pylist():
            read = zone.read_object(path, run_date)
            yield _meta_row(read.name, read.digest, len(read.rows))
            yield from _as(read.rows.df, READ_SCHEMA)


def _position_task(
    batches: Iterator[pa.RecordBatch], *, index: dict[str, int]
) -> Iterator[pa.RecordBatch]:
    """``_read_task``'s rows, in its order, as bars with their ``POSITION`` (an object's
    index in the high 32 bits, the row's in the object below)."""
    current, row = 0, 0  # object and next row carried over from the previous Arrow batch
    for batch in batches:
        df = pl.DataFrame(pa.Table.from_batches([batch]))
        digest = pl.col(_DIGEST).is_not_null()
        segment = digest.cum_sum()  # 0: rows continuing the previous batch's object
        marked = df.with_columns(
            pl.when(digest)
            .then(pl.col(_OBJECT).replace_strict(index, return_dtype=pl.Int64))
            .forward_fill()
            .fill_null(current)
            .alias("_index"),
            (
                (~digest).cast(pl.Int64).cum_sum().over(segment)
                - 1
                + pl.when(segment == 0).then(row).otherwise(0)
            ).alias("_row"),
        )
        if marked.height:
            current, row = int(marked["_index"][-1]), int(marked["_row"][-1]) + 1
        yield from _as(
            marked.filter(~digest).with_columns(
                (pl.col("_index") * 2**32 + pl.col("_row")).alias(POSITION)
            ),
            POSITIONED_SCHEMA,
        )


def _plan_task(batches: Iterator[pa.RecordBatch], *, task: _Task) -> Iterator[pa.RecordBatch]:
    """The plan over this task's symbols. Its changed rows and manifest keys are written as
    fragment files (named for the task's partition, so a retried task rewrites the same
    files); only the partitions touched, rejected rows and counts go back to Spark."""
    received = list(batches)
    if not received:
        return
    rows = _rows(pa.Table.from_batches(received), StockRecord)
    del received
    planned = plan.prepare(task.settings, Frame(StockRecord, rows), task.gate_rejected)
    del rows
    counts = plan.Counts()
    changed = plan.changed_rows(planned, task.run_date, counts, processed_at=task.processed_at)
    from pyspark import TaskContext

    context = TaskContext.get()
    part = f"part-{context.partitionId() if context else 0:05d}.parquet"
    frames = [f.df for f in changed]
    months = []
    if frames:
        changed_rows = pl.concat(frames)
        by_partition = changed_rows.partition_by(*lake.PARTITION_KEYS, as_dict=True)
        for (year, month), rows in by_partition.items():
            _write_fragment(task, f"{_FRAGMENTS}/year={year}/month={month}/{part}", rows)
            months.append({"year": year, "month": month})
    _write_fragment(task, f"{_KEYS}/{part}", counts.manifest())
    touched = pl.DataFrame(months, schema={"year": pl.Int32, "month": pl.Int32})
    yield from _as(touched, PLAN_SCHEMA, kind=FRAGMENT)
    yield from _as(planned.rejected, PLAN_SCHEMA, kind=REJECTED)
    yield from _as(
        pl.DataFrame(
            {_ROWS: [planned.rows_in], _COMPUTED: [counts.computed], _WRITTEN: [counts.written]}
        ),
        PLAN_SCHEMA,
        kind=COUNTS,
    )


def _stage_task(batches: Iterator[pa.RecordBatch], *, task: _Task) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        for year, month in zip(batch["year"].to_pylist(), batch["month"].to_pylist(), strict=True):
            directory = f"{_FRAGMENTS}/year={year}/month={month}"
            rows = _read_fragments(task, directory, EnrichedStockRecord.polars_schema())
            path = lake.stage_partition(task.settings, (year, month), rows, task.staging)
            yield pa.RecordBatch.from_pylist(
                [{"year": year, "month": month, "path": path}], STAGED_SCHEMA
            )


def _manifest_task(batches: Iterator[pa.RecordBatch], *, task: _Task) -> Iterator[pa.RecordBatch]:
    for _ in batches:
        keys = _read_fragments(task, _KEYS, lake.KEY_SCHEMA).sort(*lake.KEY)
        path = lake.stage_changes_file(task.settings, task.staging, keys)
        yield pa.RecordBatch.from_pylist([{"path": path}])


_FRAGMENTS, _KEYS = "fragments", "keys"
"""Where plan tasks leave their changed rows (per partition) and manifest keys, in the run's
staging directory: the second step reads them from there, not through a shuffle."""


def _write_fragment(task: _Task, name: str, rows: pl.DataFrame) -> None:
    fs, path = filesystem(task.settings.path(lake.CURATED, lake.STAGING, task.staging, name))
    buffer = io.BytesIO()
    rows.write_parquet(buffer, compression="lz4")
    put_bytes(fs, path, buffer.getvalue())


def _read_fragments(task: _Task, directory: str, schema: pl.Schema) -> pl.DataFrame:
    fs, root = filesystem(task.settings.path(lake.CURATED, lake.STAGING, task.staging, directory))
    frames = [pl.DataFrame(schema=schema)]
    for path in sorted(fs.glob(f"{root}/*.parquet")):
        with fs.open(path, "rb") as handle:
            frames.append(pl.read_parquet(handle))
    return pl.concat(frames)


def _meta_row(name: str, digest: str, rows: int) -> pa.RecordBatch:
    values = {_OBJECT: name, _DIGEST: digest, _ROWS: rows}
    return pa.RecordBatch.from_pylist(
        [{f.name: values.get(f.name) for f in READ_SCHEMA}], READ_SCHEMA
    )


def _as(df: pl.DataFrame, schema: pa.Schema, kind: int | None = None) -> list[pa.RecordBatch]:
    """``df``'s rows in ``schema`` (missing columns null, tagged with ``kind``)."""
    if df.is_empty():
        return []
    present = set(df.columns)
    columns = [
        pl.lit(kind, pl.Int32).alias(f.name)
        if f.name == KIND
        else pl.col(f.name)
        if f.name in present
        else pl.lit(None).alias(f.name)
        for f in schema
    ]
    batches: list[pa.RecordBatch] = df.select(columns).to_arrow().cast(schema).to_batches()
    return batches
