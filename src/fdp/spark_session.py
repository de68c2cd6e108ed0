"""Spark plumbing: the session with the settings the transform relies on, and record schemas.

Every Spark entry point (the ``spark`` engine, the validate stage, ``fdp.engines.spark_job``
under spark-submit or AWS Glue, the tests) gets its session from ``session``, so where Spark
runs (``FDP_SPARK_MASTER``, ``FDP_SPARK_REMOTE``), adaptive execution, dynamic partition
overwrite and UTC are never forgotten. A Spark Connect session has no ``sparkContext``: what
the engine needs from it (``parallelism``, ``quiet``) works on both kinds of session. Spark
schemas are derived from ``fdp.records`` through their Arrow schema: a column is added or
retyped in one place only.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

import pyarrow as pa

from fdp.errors import MissingDependencyError
from fdp.records import Record

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


def session(settings: Settings) -> SparkSession:
    """The Spark session fdp runs on: the active one when there is one (spark-submit, Glue or a
    notebook made it, and its master stands), else a new one: Spark Connect to
    ``settings.spark_remote`` when set, else classic on ``settings.spark_master``, with
    ``SESSION_CONF`` (on Connect: its SQL part, the rest is the server's), ``LOCAL_CONF`` on a
    local master, and ``settings.spark_conf`` on top."""
    active = _session_class().getActiveSession()
    if active is not None:
        return active
    if settings.spark_remote:
        return _connect(settings.spark_remote, settings.spark_conf)
    return build_session(settings.spark_master, settings.spark_conf)


def build_session(
    master: str | None = "local[2]", conf: Mapping[str, str] | None = None
) -> SparkSession:
    """The active classic session, or a new one on ``master`` with ``SESSION_CONF`` (and
    ``LOCAL_CONF`` for a ``local`` master), then ``conf``. ``master=None``, or a driver that
    spark-submit launched, leaves the master to spark-submit (its ``--master``) or Glue."""
    builder = _session_class().builder.appName("fdp")
    settings = dict(SESSION_CONF)
    if master is not None and "PYSPARK_GATEWAY_PORT" not in os.environ:
        builder = builder.master(master)
        if master.startswith("local"):
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            settings |= LOCAL_CONF
    for key, value in (settings | dict(conf or {})).items():
        builder = builder.config(key, value)
    started = builder.getOrCreate()
    quiet(started)
    return started


def _connect(url: str, conf: Mapping[str, str]) -> SparkSession:
    """A Spark Connect session on ``url`` with the SQL part of ``SESSION_CONF``, then ``conf``
    set one by one, so a property the server owns (``spark.executor.memory``) fails loudly
    instead of being ignored."""
    builder = _session_class().builder.remote(url).appName("fdp")
    for key, value in SESSION_CONF.items():
        if key.startswith("spark.sql."):
            builder = builder.config(key, value)
    started = builder.getOrCreate()
    for key, value in conf.items():
        started.conf.set(key, value)
    return started


def _session_class() -> type[SparkSession]:
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise MissingDependencyError("pyspark", "spark") from None
    return SparkSession


def is_connect(spark: SparkSession) -> bool:
    """Whether ``spark`` is a Spark Connect session (no ``sparkContext``, no JVM here)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


CONNECT_PARALLELISM = 2
"""Tasks assumed to run at once over Spark Connect when the server does not say
(``spark.default.parallelism``): a client cannot see the cluster's cores. Inputs big enough to
matter are cut by size anyway (``shuffle_partitions``)."""


def parallelism(spark: SparkSession) -> int:
    """Tasks the cluster runs at once: the context's default parallelism on a classic session;
    on Connect (no context) ``spark.default.parallelism`` when the server sets it."""
    if not is_connect(spark):
        return int(spark.sparkContext.defaultParallelism)
    return int(str(spark.conf.get("spark.default.parallelism", str(CONNECT_PARALLELISM))))


def quiet(spark: SparkSession, level: str = "ERROR") -> None:
    """Only Spark's ``level`` messages on the console; a Connect server keeps its own log."""
    if not is_connect(spark):
        spark.sparkContext.setLogLevel(level)


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
