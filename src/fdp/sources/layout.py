"""Where the raw zone keeps a batch: the one place its layout is defined.

    raw/source=<source>/ingest_date=<YYYY-MM-DD>/symbol=<SYM>.json       the bytes
    raw/source=<source>/ingest_date=<YYYY-MM-DD>/symbol=<SYM>.meta.json  fetch time, url, sha256
    raw/source=<source>/ingest_date=<YYYY-MM-DD>/part-<NNNNN>.parquet    bulk bars (simulator)

Light on purpose (no dataframe or object-store library for a local data directory): a command
asked for a batch that does not exist answers at once.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from fdp.config import Settings
from fdp.errors import ConfigError
from fdp.sources import SOURCES

RAW = "raw"
META_SUFFIX = ".meta.json"


def batch_relpath(source: str, ingest_date: dt.date) -> str:
    """The batch's folder below ``raw/``."""
    if source not in SOURCES:
        raise ConfigError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    return f"source={source}/ingest_date={ingest_date.isoformat()}"


def is_data_object(name: str) -> bool:
    """A batch object holding bars (metadata and hidden staging files are not)."""
    if name.startswith("."):
        return False
    return name.endswith(".parquet") or (name.endswith(".json") and not name.endswith(META_SUFFIX))


def _names(settings: Settings, relpath: str) -> list[str]:
    """The entry names of a folder under ``raw/`` (none when it does not exist)."""
    if not settings.is_remote:
        try:
            return [entry.name for entry in os.scandir(Path(settings.data_dir, RAW, relpath))]
        except (FileNotFoundError, NotADirectoryError):
            return []
    from fdp.storage import filesystem

    fs, path = filesystem(settings.path(RAW, relpath), settings)
    if not fs.exists(path):
        return []
    return [str(p).rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(path, detail=False)]


def has_batch(settings: Settings, source: str, ingest_date: dt.date) -> bool:
    """Whether (source, date) holds at least one data object."""
    return any(map(is_data_object, _names(settings, batch_relpath(source, ingest_date))))


def batch_sources(settings: Settings, ingest_date: dt.date) -> list[str]:
    """The sources with a batch for ``ingest_date``."""
    return [s for s in SOURCES if has_batch(settings, s, ingest_date)]


def batch_dates(settings: Settings, source: str, start: dt.date, end: dt.date) -> list[dt.date]:
    """The ingest dates in [start, end] with a batch of ``source``, oldest first."""
    found = []
    for name in _names(settings, f"source={source}"):
        try:
            day = dt.date.fromisoformat(name.removeprefix("ingest_date="))
        except ValueError:
            continue
        if name.startswith("ingest_date=") and start <= day <= end:
            found.append(day)
    return sorted(d for d in found if has_batch(settings, source, d))
