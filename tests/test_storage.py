"""The shared atomic write and the fsspec plumbing."""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow as pa
import pytest

from fdp.config import Settings
from fdp.storage import (
    filesystem,
    is_local,
    parquet_bytes,
    put_bytes,
    read_parquet,
    storage_options,
)


def test_put_bytes_creates_parents_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    fs, root = filesystem(str(tmp_path))
    target = f"{root}/a/b/object.bin"

    put_bytes(fs, target, b"first")
    put_bytes(fs, target, b"second")

    assert Path(target).read_bytes() == b"second"
    assert [p.name for p in (tmp_path / "a" / "b").iterdir()] == ["object.bin"]


def test_readers_never_see_a_partial_object(tmp_path: Path) -> None:
    fs, root = filesystem(f"file://{tmp_path}")
    target = f"{root}/big.bin"
    versions = (b"a" * 4_000_000, b"b" * 3_000_000)
    put_bytes(fs, target, versions[0])
    seen: set[int] = set()
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            data = Path(target).read_bytes()
            seen.add(len(data) if data in versions else -1)

    reader = threading.Thread(target=read)
    reader.start()
    for i in range(30):
        put_bytes(fs, target, versions[i % 2])
    stop.set()
    reader.join()

    assert -1 not in seen
    assert seen


def test_parquet_round_trip(tmp_path: Path) -> None:
    table = pa.table({"x": [1, 2, 3], "y": ["a", None, "c"]})
    fs, root = filesystem(str(tmp_path))
    put_bytes(fs, f"{root}/t.parquet", parquet_bytes(table))
    assert read_parquet(fs, f"{root}/t.parquet").equals(table)


def test_storage_options_carry_endpoint_and_region() -> None:
    plain = Settings(data_dir="s3://b/p")
    custom = Settings(
        data_dir="s3://b/p", s3_endpoint_url="http://127.0.0.1:9000", aws_region="eu-west-1"
    )

    assert storage_options(plain)["s3"] == {}
    assert storage_options(custom)["s3"] == {
        "endpoint_url": "http://127.0.0.1:9000",
        "client_kwargs": {"region_name": "eu-west-1"},
    }


def test_local_paths_are_local(tmp_path: Path) -> None:
    fs, path = filesystem(str(tmp_path))
    assert is_local(fs)
    assert path == str(tmp_path)


def test_a_local_data_dir_is_a_plain_path_whatever_it_holds(tmp_path: Path) -> None:
    """fsspec reads ``::`` in a URL as a chain of filesystems: a plain path must never be."""
    odd = tmp_path / "a::b" / "c?d#e"
    fs, root = filesystem(str(odd))
    put_bytes(fs, f"{root}/x.bin", b"here")
    assert (odd / "x.bin").read_bytes() == b"here"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a::b"]


def test_only_a_named_scheme_makes_a_data_dir_remote(tmp_path: Path) -> None:
    assert not Settings(data_dir=str(tmp_path / "x::y")).is_remote
    assert not Settings(data_dir="relative/s3:/x").is_remote
    assert Settings(data_dir="s3://bucket/prefix", warehouse_url="duckdb:///w.db").is_remote


def test_a_warehouse_path_duckdb_cannot_keep_is_a_clear_error(tmp_path: Path) -> None:
    from fdp.errors import ConfigError
    from fdp.warehouse.connect import connect

    settings = Settings(data_dir=str(tmp_path / "what?not"))
    with pytest.raises(ConfigError, match="'\\?'") as refused:
        connect(settings.warehouse_url, settings)
    assert refused.value.hint
    assert not (tmp_path / "what?not").exists()
