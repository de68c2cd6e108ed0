"""The rejected-rows store: every row kept out of the lake, with the rule that kept it out.

Layout (the one place it is defined)::

    rejected/stage=<quality|cleanse>/source=<S>/ingest_date=<YYYY-MM-DD>/rejected.parquet

A row is a ``StockRecord`` plus ``stage``, ``rule`` and ``reason``. Each (stage, source, date)
object is replaced whole and atomically, so re-running a stage for a batch never duplicates
rows, and one source's run never touches another's rejections.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from fdp.config import Settings
from fdp.records import Frame, StockRecord, check
from fdp.sources import SOURCES
from fdp.storage import filesystem, parquet_bytes, put_bytes, read_parquet

REJECTED = "rejected"
STAGES = ("quality", "cleanse")
EXTRA_COLUMNS: dict[str, pl.DataType] = {
    "stage": pl.String(),
    "rule": pl.String(),
    "reason": pl.String(),
}


def rejected_schema() -> pl.Schema:
    return pl.Schema({**StockRecord.polars_schema(), **EXTRA_COLUMNS})


def _path(settings: Settings, stage: str, source: str, ingest_date: dt.date) -> str:
    if stage not in STAGES:
        raise ValueError(f"unknown rejection stage {stage!r}; expected one of {STAGES}")
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; expected one of {SOURCES}")
    return settings.path(
        REJECTED,
        f"stage={stage}",
        f"source={source}",
        f"ingest_date={ingest_date}",
        "rejected.parquet",
    )


def write_rejected(
    settings: Settings, stage: str, ingest_date: dt.date, rows: pl.DataFrame, *, source: str
) -> str:
    """Replace the rejected rows of (stage, source, date) with ``rows`` (StockRecord + rule,
    reason)."""
    check(StockRecord, rows, origin=f"rejected rows of {stage}")
    table = rows.with_columns(pl.lit(stage).alias("stage")).select(rejected_schema().names())
    fs, path = filesystem(_path(settings, stage, source, ingest_date))
    put_bytes(fs, path, parquet_bytes(table.to_arrow()))
    return str(fs.unstrip_protocol(path))


def read_rejected(
    settings: Settings,
    ingest_date: dt.date,
    stage: str | None = None,
    *,
    source: str | None = None,
) -> pl.DataFrame:
    """The rejected rows of one date (all stages and sources unless narrowed)."""
    frames = []
    for s in STAGES if stage is None else (stage,):
        for src in SOURCES if source is None else (source,):
            fs, path = filesystem(_path(settings, s, src, ingest_date))
            if fs.exists(path):
                frames.append(pl.DataFrame(read_parquet(fs, path)))
    if not frames:
        return pl.DataFrame(schema=rejected_schema())
    return pl.concat(frames)


def superseded_rejects(superseded: pl.DataFrame) -> pl.DataFrame:
    """Cleansed batch rows (plus ``stored_ingest_date``) that a later ingest in the lake
    supersedes, as rejected rows: the date string is the cleansed trade date."""
    return superseded.select(
        "symbol",
        pl.col("trade_date").dt.to_string("%Y-%m-%d").alias("timestamp"),
        *(c for c in StockRecord.names() if c not in ("symbol", "timestamp")),
        pl.lit("superseded").alias("rule"),
        pl.format(
            "the lake holds {} {} from the later ingest of {}",
            "symbol",
            "trade_date",
            "stored_ingest_date",
        ).alias("reason"),
    )


REJECTED_KEY = ["symbol", "timestamp", "source_file"]
"""What identifies a raw row: its symbol, its date string and the object it came from."""


def accepted_rows(batch: Frame[StockRecord], rejected: pl.DataFrame) -> Frame[StockRecord]:
    """The rows of ``batch`` not listed in ``rejected`` (matched on ``REJECTED_KEY``)."""
    if rejected.is_empty():
        return batch
    keys = rejected.select(REJECTED_KEY).unique()
    kept = batch.df.join(keys, on=REJECTED_KEY, how="anti", maintain_order="left")
    return Frame(StockRecord, kept, origin="accepted rows")
