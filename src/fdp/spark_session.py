"""Spark plumbing: the session with the settings the transform relies on, and record schemas.

Every Spark entry point (the ``spark`` engine, ``fdp.engines.spark_job`` under spark-submit or
AWS Glue, the tests) builds its session here, so adaptive execution, dynamic partition
overwrite and UTC are never forgotten. Spark schemas are derived from ``fdp.records`` through
their Arrow schema: a column is added or retyped in one place only.
"""

from __future__ import annotations

import math
import os
import sys
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa

from fdp.errors import MissingDependencyError
from fdp.records import Frame, R, Record

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import DataType, StructType

    from fdp.config import Settings

ROWS_PER_SHUFFLE_PARTITION = 500_000
"""Rows per shuffle partition before adaptive execution coalesces small ones."""

SESSION_CONF = {
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.adaptive.coalescePartitions.enabled": "true",
    "spark.sql.adaptive.skewJoin.enabled": "true",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.compression.codec": "zstd",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
}
"""What the transform relies on: AQE with partition coalescing and skew joins, only the
changed ``year=/month=`` partitions replaced on overwrite, UTC timestamps, zstd Parquet whose
timestamps other readers understand (UTC microseconds, not Spark's legacy INT96)."""

LOCAL_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "4",
    "spark.driver.memory": "6g",
    "spark.driver.maxResultSize": "4g",
}
"""Local mode (CLI, tests, bench): no UI, few shuffle partitions on a small machine, and room
for the results the engine collects (10 million enriched rows are about 2.5 GB of Arrow)."""

SHORT_RUN_CONF = {
    "spark.driver.extraJavaOptions": SESSION_CONF["spark.driver.extraJavaOptions"]
    + " -XX:TieredStopAtLevel=1",
}
"""Short local runs on small data (the tests): the JVM's C2 compiler pays off on long jobs
only; on tiny inputs it costs about a third of the JVM's CPU, so only C1 compiles."""


def build_session(
    master: str | None = "local[2]", conf: dict[str, str] | None = None
) -> SparkSession:
    """The active session, or a new one with ``SESSION_CONF`` (and ``LOCAL_CONF`` for a
    ``local`` master). ``master=None`` leaves the master to spark-submit or Glue."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise MissingDependencyError("pyspark", "spark") from None
    builder = SparkSession.builder.appName("fdp")
    settings = dict(SESSION_CONF)
    if master is not None:
        builder = builder.master(master)
        if master.startswith("local"):
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            settings |= LOCAL_CONF
    for key, value in (settings | (conf or {})).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def session(settings: Settings) -> SparkSession:
    """The session every Spark entry point uses: the active one (spark-submit's, Glue's),
    else a new one on ``settings.spark_master``."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    return active if active is not None else build_session("local[*]")


def is_connect(spark: SparkSession) -> bool:
    """Whether ``spark`` is a Spark Connect session (no ``sparkContext``, no JVM here)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def parallelism(spark: SparkSession) -> int:
    """Tasks the cluster runs at once: the context's default parallelism on a classic session;
    on Connect (no context) ``spark.default.parallelism`` when the server sets it, else the
    shuffle partition count."""
    if not is_connect(spark):
        return int(spark.sparkContext.defaultParallelism)
    shuffle = spark.conf.get("spark.sql.shuffle.partitions", "200")
    return int(str(spark.conf.get("spark.default.parallelism", shuffle)))


def shuffle_partitions(rows: int, parallelism: int) -> int:
    """A shuffle partition count for ``rows`` input rows: enough for every core to take a
    share twice (so a slow task can be balanced), more as the input grows."""
    return max(2 * parallelism, math.ceil(rows / ROWS_PER_SHUFFLE_PARTITION))


def spark_type(arrow_type: pa.DataType) -> DataType:
    """The Spark type holding values of ``arrow_type`` (the types records use)."""
    from pyspark.sql import types as st

    if pa.types.is_timestamp(arrow_type):
        if arrow_type.tz not in ("UTC", "+00:00"):
            raise TypeError(f"timestamps are UTC in fdp, not {arrow_type}")
        return st.TimestampType()
    simple: dict[pa.DataType, DataType] = {
        pa.string(): st.StringType(),
        pa.large_string(): st.StringType(),
        pa.float64(): st.DoubleType(),
        pa.int64(): st.LongType(),
        pa.int32(): st.IntegerType(),
        pa.date32(): st.DateType(),
        pa.bool_(): st.BooleanType(),
    }
    return simple[arrow_type]


def spark_schema(record: type[Record]) -> StructType:
    """The Spark schema of ``record`` (derived from its Arrow schema)."""
    return spark_struct(record.arrow_schema())


def spark_struct(arrow: pa.Schema | pa.Table) -> StructType:
    """The Spark schema holding the columns of an Arrow schema or table."""
    from pyspark.sql import types as st

    schema = arrow.schema if isinstance(arrow, pa.Table) else arrow
    return st.StructType([st.StructField(f.name, spark_type(f.type), f.nullable) for f in schema])


def spark_major() -> int:
    """The major version of the installed PySpark (Glue 5 runs 3.5, local runs 4)."""
    import pyspark

    return int(pyspark.__version__.split(".")[0])


def from_arrow(
    session: SparkSession, table: pa.Table, schema: StructType | None = None
) -> DataFrame:
    """``table`` as a Spark DataFrame of ``schema`` (default: the table's own), in one partition
    per core instead of one per Arrow batch (10,000 rows): fewer, larger tasks. Spark 4 takes
    the Arrow table itself; Spark 3.5 only pandas (also sent as Arrow), with integers and floats
    in pandas' nullable types: a missing value stays missing instead of turning the column into
    floats, and a NaN stays a NaN (numpy floats send it to Spark as a null)."""
    schema = schema or spark_struct(table)
    if spark_major() >= 4:
        df = session.createDataFrame(table, schema)
    else:
        import pandas as pd

        nullable = {
            pa.int64(): pd.Int64Dtype(),
            pa.int32(): pd.Int32Dtype(),
            pa.float64(): pd.Float64Dtype(),
        }
        df = session.createDataFrame(table.to_pandas(types_mapper=nullable.get), schema)
    return df.coalesce(session.sparkContext.defaultParallelism)


def collect_arrow(df: DataFrame) -> pa.Table:
    """The rows of ``df`` as an Arrow table: ``toArrow`` on Spark 4; on 3.5 the batches that
    its ``toPandas`` collects (``toArrow``'s predecessor, not public there)."""
    if spark_major() >= 4:
        return df.toArrow()
    batches = df._collect_as_arrow()  # type: ignore[operator]  # Spark 3.5's own method
    if batches:
        return pa.Table.from_batches(batches)
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(df.schema).empty_table()


def to_spark(session: SparkSession, frame: Frame[R]) -> DataFrame:
    """``frame`` as a Spark DataFrame with its record's schema (through Arrow)."""
    return from_arrow(session, frame.to_arrow(), spark_schema(frame.record))


def to_polars(df: DataFrame, record: type[R], *, origin: str) -> Frame[R]:
    """The rows of ``df`` (collected through Arrow) as a checked ``Frame[record]``."""
    table = collect_arrow(df.select(record.names()))
    rows = pl.DataFrame(table).select(pl.col(n).cast(t) for n, t in record.polars_schema().items())
    return Frame(record, rows, origin=origin)
