"""Object I/O on a local path or an object store (``s3://``) through fsspec.

``put_bytes`` is the one atomic write of the project: on a local filesystem it writes
aside, flushes to disk and renames (a reader sees the old object or the new one, never half
of one, and a crash leaves the old one); on an object store a single PUT already has that
property. ``filesystem`` is the one place that turns settings into fsspec storage options.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec import AbstractFileSystem
from fsspec.implementations.local import LocalFileSystem

from fdp.config import Settings, is_url
from fdp.errors import MissingDependencyError


def filesystem(url: str, settings: Settings | None = None) -> tuple[AbstractFileSystem, str]:
    """The filesystem for ``url`` and the path within it.

    Object-store options (endpoint, region) come from ``settings``; callers that only hold a
    URL get them from the environment, so ``FDP_S3_ENDPOINT_URL`` reaches every reader.
    """
    if not is_url(url):
        return LocalFileSystem(), str(Path(url).absolute())
    if url.startswith("file://"):
        fs, path = fsspec.core.url_to_fs(url)
        return fs, str(path)
    options = storage_options(settings if settings is not None else Settings())
    try:
        fs, path = fsspec.core.url_to_fs(url, **options.get(url.split("://", 1)[0], {}))
    except ImportError as exc:
        raise MissingDependencyError(exc.name or "s3fs", "aws") from None
    return fs, str(path)


def storage_options(settings: Settings) -> dict[str, dict[str, Any]]:
    """fsspec options per protocol, from the settings."""
    s3: dict[str, Any] = {}
    if settings.s3_endpoint_url:
        s3["endpoint_url"] = settings.s3_endpoint_url
    if settings.aws_region:
        s3["client_kwargs"] = {"region_name": settings.aws_region}
    return {"s3": s3, "s3a": s3}


def is_local(fs: AbstractFileSystem) -> bool:
    return "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))


def put_bytes(fs: AbstractFileSystem, path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, creating parent directories."""
    if not is_local(fs):
        fs.pipe_file(path, data)
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        with tmp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def parquet_bytes(table: pa.Table) -> bytes:
    """``table`` as zstd-compressed Parquet, in memory.

    Float columns skip dictionary encoding: prices rarely repeat, so trying it costs about a
    third of the write time and makes the file bigger.
    """
    sink = pa.BufferOutputStream()
    dictionary = [f.name for f in table.schema if not pa.types.is_floating(f.type)]
    pq.write_table(table, sink, compression="zstd", use_dictionary=dictionary)
    return bytes(sink.getvalue().to_pybytes())


def read_parquet(fs: AbstractFileSystem, path: str) -> pa.Table:
    with fs.open(path, "rb") as handle:
        return pq.read_table(handle)
