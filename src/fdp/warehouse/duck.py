"""The embedded warehouse: one DuckDB file under the data directory, no server.

DuckDB lets one process write a file at a time; a second process meets a lock error, which is
transient here (retried with backoff until the first one is done). Within a process, writing
sessions on one file take turns on a lock, so loads never overlap (the fact table has no key
index to catch two loads inserting the same key: see ``sql.DUCKDB``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa

from fdp.errors import ConfigError, TransientError
from fdp.records import EnrichedStockRecord, Frame
from fdp.warehouse.base import Retry, Session, Warehouse, retry
from fdp.warehouse.sql import DUCKDB, STAGE, insert_staged, lake_fingerprints

PREFIX = "duckdb:///"
READ_ONLY_SETTINGS = (
    "SET enable_external_access = false",
    "SET autoinstall_known_extensions = false",
    "SET autoload_known_extensions = false",
    "SET lock_configuration = true",
)
"""Applied before a query's statement, in this order (the lock last)."""
BATCH_ROWS = 65_536
_WRITERS: dict[Path, threading.Lock] = {}
_WRITERS_GUARD = threading.Lock()


def _writer_lock(path: Path) -> threading.Lock:
    with _WRITERS_GUARD:
        return _WRITERS.setdefault(path.resolve(), threading.Lock())


def path_of(url: str) -> Path:
    """The database file of a ``duckdb:///abs/path.duckdb`` URL."""
    if not url.startswith(PREFIX) or len(url) == len(PREFIX):
        raise ConfigError(f"DuckDB warehouse URL must look like duckdb:///abs/path.duckdb: {url}")
    path = Path("/" + url[len(PREFIX) :].lstrip("/"))
    if "?" in str(path):
        # DuckDB reads "?" as the start of URL options: its WAL would go to another file.
        raise ConfigError(
            f"DuckDB cannot keep a warehouse at a path holding '?': {path}",
            hint="set FDP_WAREHOUSE_URL (or FDP_DATA_DIR) to a path without '?'",
        )
    return path


def _transient(exc: duckdb.Error) -> bool:
    return isinstance(exc, duckdb.TransactionException) or (
        isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()
    )


def to_arrow(df: pl.DataFrame) -> pa.Table:
    """``df`` as Arrow without a copy: one record batch per Polars chunk, text as string
    views as Polars holds it. Exporting a frame whole first joins its chunks into one, and
    converting text to Arrow strings copies it: 2-3 s each for 10M rows read from the lake."""
    batches = []
    offset = 0
    for length in df.to_series(0).chunk_lengths() if df.width else []:
        chunk = df.slice(offset, length).to_arrow(compat_level=pl.CompatLevel.newest())
        batches += chunk.to_batches()
        offset += length
    schema = df.head(0).to_arrow(compat_level=pl.CompatLevel.newest()).schema
    return pa.Table.from_batches(batches, schema)


class _DuckSession(Session):
    def __init__(self, con: duckdb.DuckDBPyConnection, where: str) -> None:
        self.con = con
        self.where = where

    def _run(self, sql: str, params: Sequence[Any] = ()) -> duckdb.DuckDBPyConnection:
        try:
            return self.con.execute(sql, list(params))
        except duckdb.Error as exc:
            if _transient(exc):
                raise TransientError(f"DuckDB warehouse {self.where} is busy: {exc}") from exc
            raise

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._run(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.con.executemany(sql, [list(r) for r in rows])

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._run(sql, params).fetchall()

    def frame(self, sql: str, schema: pl.Schema, params: Sequence[Any] = ()) -> pl.DataFrame:
        """Through Arrow, not Python tuples; columns are named by position, as in ``fetchall``."""
        try:
            table = self.con.sql(sql, params=list(params) or None).to_arrow_table()
        except duckdb.Error as exc:
            if _transient(exc):
                raise TransientError(f"DuckDB warehouse {self.where} is busy: {exc}") from exc
            raise
        found = pl.from_arrow(table.rename_columns(list(schema)))
        assert isinstance(found, pl.DataFrame)
        return found.cast(schema)

    def stage(self, rows: pl.DataFrame) -> None:
        """Staging is a view over the rows' Arrow memory: DuckDB scans it without a copy."""
        self.con.register(STAGE, to_arrow(rows))

    def insert_all(self, slices: Iterable[pl.DataFrame]) -> None:
        """One INSERT reading the slices as an Arrow stream, pulled as it goes: an INSERT per
        slice left partly filled row groups that the checkpoint at the end merged again (a
        second pass over the data, and a third more file here). An error raised while the
        slices are read surfaces as itself, not as DuckDB's wrapper of it."""
        raised: list[BaseException] = []

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                for rows in slices:
                    yield from to_arrow(rows).to_batches()
            except BaseException as exc:
                raised.append(exc)
                raise

        empty = Frame.empty(EnrichedStockRecord).df.to_arrow(compat_level=pl.CompatLevel.newest())
        self.con.register(STAGE, pa.RecordBatchReader.from_batches(empty.schema, batches()))
        try:
            self._run(insert_staged())
        except duckdb.Error:
            if raised:
                raise raised[0] from None
            raise


class DuckDBWarehouse(Warehouse):
    dialect = DUCKDB

    def __init__(self, url: str, policy: Retry) -> None:
        super().__init__(url, policy)
        self.path = path_of(url)

    def _connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        def attempt() -> duckdb.DuckDBPyConnection:
            try:
                con = duckdb.connect(str(self.path), read_only=read_only)
            except duckdb.IOException as exc:
                if _transient(exc):
                    raise TransientError(f"DuckDB warehouse {self.path} is locked: {exc}") from exc
                raise ConfigError(f"cannot open DuckDB warehouse {self.path}: {exc}") from exc
            con.execute("SET TimeZone = 'UTC'")
            return con

        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.path.exists():
            raise ConfigError(f"no warehouse at {self.path}: run `fdp load` first")
        return retry(self.policy, attempt)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with _writer_lock(self.path), self._transaction() as session:
            yield session

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        con = self._connect()
        try:
            con.execute("BEGIN TRANSACTION")
            try:
                yield _DuckSession(con, str(self.path))
            except BaseException:
                con.execute("ROLLBACK")
                raise
            try:
                con.execute("COMMIT")
            except duckdb.TransactionException as exc:
                raise TransientError(f"DuckDB warehouse {self.path}: commit conflict") from exc
        finally:
            con.close()

    def read_only_connection(self) -> duckdb.DuckDBPyConnection:
        """The connection ``query`` runs on: the file opened read-only, no file, network or
        extension access beyond it, and a configuration no statement can change back."""
        con = self._connect(read_only=True)
        for setting in READ_ONLY_SETTINGS:
            con.execute(setting)
        return con

    def query(self, sql: str, limit: int | None = None, timeout_s: float | None = None) -> pa.Table:
        """DuckDB's own parser must find one SELECT (DESCRIBE, SHOW and SUMMARIZE are SELECTs
        to it) or EXPLAIN: the settings of ``read_only_connection`` alone do not stop a series
        of statements that re-attaches this file read-write (DuckDB always lets a connection
        open its own file). Batches are pulled until ``limit`` rows, so a large result is
        never whole in memory; ``timeout_s`` interrupts the statement. In one process, queries
        and loads of a file take turns: DuckDB keeps one instance per file, whose
        configuration a query locks."""
        from fdp.warehouse.query import failed, timed_out

        statement = _one_read_statement(sql, self.where)
        with _writer_lock(self.path):
            con = self.read_only_connection()
            cancelled = threading.Event()

            def cancel() -> None:
                cancelled.set()
                con.interrupt()

            timer = threading.Timer(timeout_s, cancel) if timeout_s else None
            try:
                if timer:
                    timer.start()
                return _first_rows(con.sql(statement), limit)
            except (duckdb.Error, pa.ArrowException, OSError) as exc:
                if cancelled.is_set():
                    raise timed_out(self.where, timeout_s) from None
                raise failed(self.where, str(exc)) from None
            finally:
                if timer:
                    timer.cancel()
                con.close()


def _one_read_statement(sql: str, where: str) -> duckdb.Statement:
    """``sql`` as DuckDB's own parser reads it, if that is one SELECT or EXPLAIN."""
    from fdp.warehouse.query import failed

    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise failed(where, str(exc)) from None
    kinds = [s.type.name for s in statements]
    if kinds not in (["SELECT"], ["EXPLAIN"]):
        raise ConfigError(
            "query refused by DuckDB: one SELECT or EXPLAIN only, not "
            f"{' + '.join(kinds) or 'nothing'}"
        )
    return statements[0]


def _first_rows(relation: duckdb.DuckDBPyRelation, limit: int | None) -> pa.Table:
    """The first ``limit`` rows (all when None), pulled batch by batch."""
    reader = relation.to_arrow_reader(min(limit or BATCH_ROWS, BATCH_ROWS))
    try:
        batches: list[pa.RecordBatch] = []
        rows = 0
        while limit is None or rows < limit:
            try:
                batches.append(reader.read_next_batch())
            except StopIteration:
                break
            rows += batches[-1].num_rows
        table = pa.Table.from_batches(batches, reader.schema)
    finally:
        reader.close()
    return table if limit is None else table.slice(0, limit)


def fingerprint(rows: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """The lake side of reconciliation: DuckDB's row fingerprint (``sql.row_fingerprint``) of
    ``rows``, computed by an in-memory DuckDB of its own over their Arrow memory (the same
    function as the warehouse's, on another data path)."""
    con = duckdb.connect()
    try:
        con.register("lake_rows", to_arrow(rows))
        table = con.sql(lake_fingerprints(DUCKDB, "lake_rows")).to_arrow_table()
    finally:
        con.close()
    found = pl.from_arrow(table.rename_columns(list(schema)))
    assert isinstance(found, pl.DataFrame)
    return found.cast(schema)
