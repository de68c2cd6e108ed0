"""The transform as one Spark application, for ``spark-submit`` and AWS Glue.

    spark-submit -m fdp.engines.spark_job --data-dir s3://bucket/fdp --date 2024-06-28
                                          (or --start 2024-01-02 --end 2024-06-28)

It is the transform stage of ``fdp transform --engine spark`` on the session that spark-submit
or Glue made: the same gate, plan, staged files and publish under the lake's lease. Unknown
arguments (Glue's own) are ignored.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from fdp import lake
from fdp.config import Settings
from fdp.engines._spark import SparkEngine
from fdp.errors import ConfigError
from fdp.quality.gate import Gate
from fdp.sources import SOURCES
from fdp.sources.layout import has_batch
from fdp.spark_session import session as spark_session
from fdp.transform import TransformResult, transform

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="fdp.engines.spark_job", description=__doc__)
    parser.add_argument("--data-dir", required=True, help="FDP_DATA_DIR: raw/ in, curated/ out")
    parser.add_argument("--date", type=dt.date.fromisoformat, help="one run (ingest) date")
    parser.add_argument("--start", type=dt.date.fromisoformat, help="first run date")
    parser.add_argument("--end", type=dt.date.fromisoformat, help="last run date")
    parser.add_argument("--source", choices=SOURCES, default="simulator")
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


def main(
    argv: Sequence[str] | None = None, session: SparkSession | None = None
) -> list[TransformResult]:
    """Run the transform for every date of the arguments that has a batch, oldest first."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    settings = Settings(data_dir=args.data_dir, engine="spark")
    engine = SparkEngine(session or spark_session(settings))
    results = []
    with lake.lease(settings, "spark job"):
        for day in filter(lambda d: has_batch(settings, args.source, d), run_dates(args)):
            gate = Gate(settings, args.source, day, override=args.override_gate)
            results.append(transform(settings, day, gate=gate, engine=engine))
    for r in results:
        print(
            f"{r.run_date}: rows in {r.rows_in}, rejected {r.rejected}, written"
            f" {r.rows_written}, partitions replaced {r.partitions_replaced}"
        )
    return results


if __name__ == "__main__":
    main()
