"""The transform as one Spark application, for ``spark-submit`` and AWS Glue.

    spark-submit -m fdp.engines.spark_job --source-path s3://b/fdp --target-path s3://b/fdp \\
        --date 2024-06-28            (or --start 2024-01-02 --end 2024-06-28)

Both paths are data directories (``FDP_DATA_DIR``): the raw zone is read under the source,
the curated lake (``fdp.lake``'s layout) and rejected rows are written under the target.
Unlike ``fdp transform``, which plans on the driver with a few state rows per symbol, the job
stays in Spark: the raw batch is parsed by the executors, and every symbol in the batch is
recomputed over its whole stored history, which is correct for splits and late bars alike.

Only partitions holding a changed row are written: Spark writes them (dynamic partition
overwrite, one file per ``year=/month=`` partition, rows sorted by (symbol, trade_date)) to a
staging directory, then each file replaces its partition's ``part-0.parquet`` in one rename or
PUT, so a reader never sees a half-replaced partition. Unknown arguments (Glue's own) are
ignored.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa

from fdp import lake
from fdp.config import Settings
from fdp.engines._spark import (
    ROW,
    SparkEngine,
    cleanse_df,
    enrich_df,
    kept_df,
    rejected_frame,
)
from fdp.errors import ConfigError
from fdp.indicators import INDICATOR_COLUMNS
from fdp.quality.gate import Gate
from fdp.records import CleansedRecord, EnrichedStockRecord, StockRecord
from fdp.rejected import superseded_rejects, write_rejected
from fdp.sources import SOURCES
from fdp.sources.landing import RawZone
from fdp.sources.vendor_json import parse_daily
from fdp.spark_session import (
    build_session,
    collect_arrow,
    from_arrow,
    spark_schema,
)
from fdp.storage import filesystem
from fdp.transform import UNCHANGED_REL_TOL

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

STAGING = lake.STAGING


@dataclass(frozen=True, slots=True)
class JobResult:
    """What one run date did."""

    run_date: dt.date
    rows_in: int
    rejected: int
    rows_written: int
    partitions_replaced: int


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="fdp.engines.spark_job", description=__doc__)
    parser.add_argument("--source-path", required=True, help="data directory with raw/")
    parser.add_argument("--target-path", required=True, help="data directory for curated/")
    parser.add_argument("--date", type=dt.date.fromisoformat, help="one run (ingest) date")
    parser.add_argument("--start", type=dt.date.fromisoformat, help="first run date")
    parser.add_argument("--end", type=dt.date.fromisoformat, help="last run date")
    parser.add_argument("--source", choices=SOURCES, default="simulator")
    parser.add_argument("--chunk-rows", type=int, help="rows per chunk of a long series")
    parser.add_argument("--master", help="Spark master (default: spark-submit's or Glue's)")
    parser.add_argument(
        "--override-gate", metavar="REASON", help="transform batches whose quality gate failed"
    )
    args, _ = parser.parse_known_args(argv)
    if (args.date is None) == (args.start is None or args.end is None):
        raise ConfigError("give --date D, or --start A and --end B")
    return args


def run_dates(args: argparse.Namespace) -> list[dt.date]:
    first, last = (args.date, args.date) if args.date else (args.start, args.end)
    return [first + dt.timedelta(days=d) for d in range((last - first).days + 1)]


def main(argv: Sequence[str] | None = None, session: SparkSession | None = None) -> list[JobResult]:
    """Run the job for every date of the arguments, oldest first."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    spark = session or build_session(args.master)
    engine = SparkEngine(spark, chunk_rows=args.chunk_rows)
    source, target = Settings(data_dir=args.source_path), Settings(data_dir=args.target_path)
    with lake.lease(target, "spark job"):
        results = [
            run_date(engine, source, target, day, args.source, override_gate=args.override_gate)
            for day in run_dates(args)
        ]
    for r in results:
        print(
            f"{r.run_date}: rows in {r.rows_in}, rejected {r.rejected}, written"
            f" {r.rows_written}, partitions replaced {r.partitions_replaced}"
        )
    return results


def run_date(
    engine: SparkEngine,
    source: Settings,
    target: Settings,
    day: dt.date,
    source_name: str,
    *,
    override_gate: str | None = None,
) -> JobResult:
    """Bring the target lake up to date with the raw batch of (``source_name``, ``day``),
    which must have passed its quality gate (validated where the raw zone is)."""
    from pyspark.sql import functions as sf

    spark = engine.session
    raw = read_raw(spark, source, source_name, day)
    if raw is None:
        return JobResult(day, 0, 0, 0, 0)
    gate = Gate(source, source_name, day, override=override_gate)
    admitted = gate.admit(RawZone(source).fingerprint(source_name, day))
    raw = _without_quality_rejects(spark, raw, admitted.rejected).persist()
    rows_in = raw.count()
    engine.size_shuffle(rows_in)
    cleansed = cleanse_df(raw).persist()
    kept = kept_df(cleansed)
    stored = _stored(spark, target)
    history = stored.join(kept.select("symbol").distinct(), "symbol", "semi")
    # An older batch run after a newer one must not win: the latest ingest of a key stays.
    superseded = kept.join(
        history.select(*lake.KEY, sf.col("ingest_date").alias("stored_ingest_date")), lake.KEY
    ).filter(sf.col("stored_ingest_date") > sf.col("ingest_date"))
    superseded_rows = pl.DataFrame(collect_arrow(superseded))
    rejected = pl.concat([rejected_frame(cleansed), superseded_rejects(superseded_rows)])
    write_rejected(target, "cleanse", day, rejected, source=source_name)
    kept = kept.join(superseded.select(*lake.KEY), lake.KEY, "anti").persist()
    carried = history.join(kept, lake.KEY, "anti").select(
        *(c for c in CleansedRecord.names() if c != "source_file"),
        sf.lit(lake.table_url(target)).alias("source_file"),
    )
    bars = kept.unionByName(carried).persist()  # read again by the enrichment
    enriched = enrich_df(
        bars,
        spark.createDataFrame([], spark_schema(EnrichedStockRecord)),
        processed_at=dt.datetime.now(dt.UTC),
        chunk_rows=engine.chunk_size(rows_in),
    ).persist()
    changed = _changed(enriched, history).persist()
    counts = changed.groupBy(*lake.PARTITION_KEYS).count().collect()
    touched = [(r["year"], r["month"]) for r in counts]
    if touched:
        months = spark.createDataFrame(touched, "year int, month int")
        keep = stored.join(months, list(lake.PARTITION_KEYS), "semi").join(
            changed, lake.KEY, "anti"
        )
        _write_partitions(target, keep.unionByName(changed), sorted(touched))
    keys = kept.select(*lake.KEY).unionByName(changed.select(*lake.KEY))
    lake.write_changes(target, day, pl.DataFrame(collect_arrow(keys)))
    for df in (raw, cleansed, kept, bars, enriched, changed):
        df.unpersist()
    written = sum(r["count"] for r in counts)
    return JobResult(day, rows_in, rejected.height, written, len(touched))


def read_raw(
    spark: SparkSession, settings: Settings, source: str, day: dt.date
) -> DataFrame | None:
    """The raw batch as StockRecord rows plus ``_row`` (input order); vendor JSON objects
    are parsed by the executors with the same parser as the rest of fdp."""
    from pyspark.sql import functions as sf

    zone = RawZone(settings)
    json_paths, parquet_paths = zone.json_objects(source, day), zone.parquet_objects(source, day)
    if not json_paths and not parquet_paths:
        return None
    schema = spark_schema(StockRecord)
    frames = []
    if parquet_paths:
        urls = [_spark_url(zone.uri(p)) for p in parquet_paths]
        frames.append(spark.read.schema(schema).parquet(*urls))
    if json_paths:
        files = spark.read.format("binaryFile").load([_spark_url(zone.uri(p)) for p in json_paths])
        uris = {_hadoop_uri(_spark_url(zone.uri(p))): zone.uri(p) for p in json_paths}
        symbols = {_hadoop_uri(_spark_url(zone.uri(p))): zone.object_symbol(p) for p in json_paths}

        def parse(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            for batch in batches:
                for path, content in zip(
                    batch["path"].to_pylist(), batch["content"].to_pylist(), strict=True
                ):
                    frame = parse_daily(
                        content, source_file=uris[path], ingest_date=day, symbol=symbols[path]
                    )
                    yield from frame.to_arrow().to_batches()

        frames.append(files.select("path", "content").mapInArrow(parse, schema))
    raw = frames[0] if len(frames) == 1 else frames[0].unionByName(frames[1])
    return raw.withColumn(ROW, sf.monotonically_increasing_id())


def _hadoop_uri(uri: str) -> str:
    """The path Spark's binaryFile reader reports for ``uri`` (``file:/x`` for ``file:///x``)."""
    return "file:" + uri.removeprefix("file://") if uri.startswith("file://") else uri


def _without_quality_rejects(
    spark: SparkSession, raw: DataFrame, rejected: pl.DataFrame
) -> DataFrame:
    if rejected.is_empty():
        return raw
    keys = ["symbol", "timestamp", "source_file"]
    table = rejected.select(keys).unique().to_arrow()
    return raw.join(from_arrow(spark, table), keys, "anti")


def _stored(spark: SparkSession, settings: Settings) -> DataFrame:
    """The whole curated table (``year`` and ``month`` from the paths)."""
    if not lake.partitions(settings):
        return spark.createDataFrame([], spark_schema(EnrichedStockRecord))
    files = [_spark_url(lake.partition_url(settings, p)) for p in lake.partitions(settings)]
    df = spark.read.option("basePath", _spark_url(lake.table_url(settings))).parquet(*files)
    return df.select(
        *(
            df[c].cast(f.dataType).alias(c)
            for c, f in zip(
                EnrichedStockRecord.names(), spark_schema(EnrichedStockRecord).fields, strict=True
            )
        )
    )


def _changed(enriched: DataFrame, stored: DataFrame) -> DataFrame:
    """Enriched rows that are new or differ from the stored row of their key (indicators within
    ``UNCHANGED_REL_TOL``; an unchanged row keeps its stored processing time)."""
    from pyspark.sql import functions as sf

    old = stored.select(
        *lake.KEY, *(sf.col(c).alias(f"{c}_old") for c in stored.columns if c not in lake.KEY)
    )
    joined = enriched.join(old, lake.KEY, "left")
    differs = sf.col("processing_timestamp_old").isNull()
    for column in EnrichedStockRecord.names():
        if column in (*lake.KEY, "processing_timestamp"):
            continue
        new, prior = sf.col(column), sf.col(f"{column}_old")
        if column in INDICATOR_COLUMNS:
            scale = sf.greatest(sf.abs(new), sf.abs(prior))
            far = sf.coalesce(
                sf.abs(new - prior) > sf.lit(UNCHANGED_REL_TOL) * scale, sf.lit(False)
            )
            differs = differs | (new.isNull() != prior.isNull()) | far
        else:
            differs = differs | ~new.eqNullSafe(prior)
    return joined.filter(differs).select(EnrichedStockRecord.names())


def _write_partitions(settings: Settings, rows: DataFrame, touched: list[lake.Partition]) -> None:
    """Write ``rows`` (the full new content of the ``touched`` partitions) through a staging
    directory, then move each partition file over the lake's one atomically."""
    staging = settings.path(lake.CURATED, STAGING, uuid.uuid4().hex)
    (
        rows.repartition(*lake.PARTITION_KEYS)
        .sortWithinPartitions(*lake.PARTITION_KEYS, *lake.KEY)
        .select(*lake.file_columns(), *lake.PARTITION_KEYS)
        .write.mode("overwrite")
        .partitionBy(*lake.PARTITION_KEYS)
        .option("compression", "zstd")
        .parquet(_spark_url(staging))
    )
    fs, root = filesystem(staging, settings)
    for year, month in touched:
        (written,) = fs.glob(f"{root}/year={year}/month={month}/*.parquet")
        _, target = filesystem(lake.partition_url(settings, (year, month)), settings)
        fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        fs.mv(written, target)
    fs.rm(root, recursive=True)


def _spark_url(url: str) -> str:
    """``url`` for Spark's Hadoop filesystems (``s3a://`` outside EMR and Glue)."""
    return "s3a://" + url.removeprefix("s3://") if url.startswith("s3://") else url


if __name__ == "__main__":
    main()
