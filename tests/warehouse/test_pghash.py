"""fdp's numpy rewrite of PostgreSQL's hashing, checked bit for bit against the real server.

Rows reach the server by binary COPY, so it hashes exactly the doubles (NaN payloads and
signs included), integers, dates, timestamps and UTF-8 text that the rewrite hashes.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Iterator
from typing import Any
from unittest.mock import patch

import numpy as np
import polars as pl
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fdp.warehouse import pgbinary, pghash

pytestmark = pytest.mark.postgres

SCHEMA = pl.Schema(
    {
        "t": pl.String,
        "f": pl.Float64,
        "i8": pl.Int64,
        "i4": pl.Int32,
        "d": pl.Date,
        "ts": pl.Datetime("us", "UTC"),
    }
)
DDL = "CREATE TEMP TABLE h (t TEXT, f FLOAT8, i8 BIGINT, i4 INT, d DATE, ts TIMESTAMPTZ, "
DDL += "seed BIGINT, n INT)"

any_bits = st.integers(0, 2**64 - 1).map(lambda b: struct.unpack("<d", struct.pack("<Q", b))[0])
floats = st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True) | any_bits
texts = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=40)
# hypothesis takes naive bounds and adds the zone
oldest, newest = dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31)  # noqa: DTZ001
moments = st.datetimes(oldest, newest, timezones=st.just(dt.UTC))
rows = st.tuples(
    st.none() | texts,
    st.none() | floats | st.sampled_from([0.0, -0.0, 5e-324, -5e-324, 1.7976931348623157e308]),
    st.none() | st.integers(-(2**63), 2**63 - 1),
    st.none() | st.integers(-(2**31), 2**31 - 1),
    st.none() | st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31)),
    st.none() | moments,
)
seeds = st.integers(-(2**63), 2**63 - 1) | st.sampled_from([0, 1, -1, 1 << 62])


@pytest.fixture(scope="module")
def con(pg_database: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(pg_database, autocommit=True) as connection:
        connection.execute(DDL)
        yield connection


def _server_hashes(
    con: psycopg.Connection[Any], frame: pl.DataFrame, row_seeds: list[int], columns: str
) -> list[int]:
    """``hash_record_extended(ROW(columns), seed)`` of each row, by the server."""
    con.execute("TRUNCATE h")
    table = frame.with_columns(
        pl.Series("seed", row_seeds, pl.Int64),
        pl.int_range(frame.height, dtype=pl.Int32).alias("n"),
    )
    with con.cursor() as cur, cur.copy("COPY h FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(pgbinary.HEADER)
        copy.write(pgbinary.encode(table))
        copy.write(pgbinary.TRAILER)
    query = f"SELECT hash_record_extended(ROW({columns}), seed) FROM h ORDER BY n"
    return [r[0] for r in con.execute(query).fetchall()]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=st.lists(st.tuples(rows, seeds), min_size=1, max_size=80))
def test_record_hash_equals_the_servers_bit_for_bit(
    con: psycopg.Connection[Any], batch: list[tuple[tuple[Any, ...], int]]
) -> None:
    frame = pl.DataFrame([r for r, _ in batch], schema=SCHEMA, orient="row")
    row_seeds = [s for _, s in batch]
    ours = pghash.record_hash(frame, np.array(row_seeds, np.int64))
    theirs = _server_hashes(con, frame, row_seeds, ", ".join(SCHEMA))
    assert ours.tolist() == theirs
    with patch.object(pghash, "CHUNK_ROWS", 7), patch.object(pghash, "BLOCK_ROWS", 19):
        assert pghash.record_hash(frame, np.array(row_seeds, np.int64)).tolist() == theirs
    for name in SCHEMA:  # each type on its own, so a failure names the function that differs
        alone = pghash.record_hash(frame.select(name), np.array(row_seeds, np.int64))
        assert alone.tolist() == _server_hashes(con, frame, row_seeds, name), name


def test_text_of_every_length_through_three_blocks_equals_the_servers(
    con: psycopg.Connection[Any],
) -> None:
    """Every tail length of lookup3's last block (0-11 bytes) after 0, 1 and 2 whole blocks,
    in one and in several bytes per character, seeded and not."""
    values = [("ab" * 20)[:n] for n in range(41)] + [("é" * 20)[: n // 2] for n in range(41)]
    frame = pl.DataFrame({"t": values}, schema={"t": pl.String})
    for seed in (0, 1 << 62, -7):
        row_seeds = [seed] * frame.height
        full = frame.with_columns(
            [pl.lit(None, dtype).alias(name) for name, dtype in SCHEMA.items() if name != "t"]
        ).select(list(SCHEMA))
        ours = pghash.record_hash(frame, np.array(row_seeds, np.int64))
        assert ours.tolist() == _server_hashes(con, full, row_seeds, "t")
