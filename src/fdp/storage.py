"""Object I/O on a local path or an object store (``s3://``) through fsspec.

``put_bytes`` is the one atomic write of the project: on a local filesystem it writes
aside and renames (a reader sees the old object or the new one, never half of one); on an
object store a single PUT already has that property.
"""

from __future__ import annotations

import uuid

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec import AbstractFileSystem


def filesystem(url: str) -> tuple[AbstractFileSystem, str]:
    """The filesystem for ``url`` and the path within it."""
    fs, path = fsspec.core.url_to_fs(url)
    return fs, str(path)


def is_local(fs: AbstractFileSystem) -> bool:
    return "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))


def put_bytes(fs: AbstractFileSystem, path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, creating parent directories."""
    if not is_local(fs):
        fs.pipe_file(path, data)
        return
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    tmp = f"{path}.{uuid.uuid4().hex}.tmp"
    try:
        fs.pipe_file(tmp, data)
        fs.mv(tmp, path)
    finally:
        if fs.exists(tmp):
            fs.rm(tmp)


def parquet_bytes(table: pa.Table) -> bytes:
    """``table`` as zstd-compressed Parquet, in memory."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return bytes(sink.getvalue().to_pybytes())


def read_parquet(fs: AbstractFileSystem, path: str) -> pa.Table:
    with fs.open(path, "rb") as handle:
        return pq.read_table(handle)
