"""PostgreSQL through psycopg 3: rows are COPY'd straight into the fact table, in key order; a
session-private staging table holds only the keys of the stored rows a load replaces
(``fdp.warehouse.loader`` tells the merge).

Rows reach the server in binary COPY format built with numpy (``pgbinary``, no per-row
Python): exact values, and cheaper for the server than parsing text. A thread encodes the
next chunks while one is sent, so the server is never kept waiting. Rows COPY'd into the fact
table go in key order, which makes the primary key's maintenance sequential (appends at its
right edge on an empty range). Loads serialise on a
transaction-level advisory lock (``sql.POSTGRES.load_lock``), so concurrent loads never
deadlock or lose rows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from itertools import islice
from typing import Any, cast
from urllib.parse import urlsplit

import polars as pl
import pyarrow as pa

from fdp.errors import ConfigError, MissingDependencyError, TerminalError, TransientError
from fdp.records import EnrichedStockRecord, in_key_order
from fdp.warehouse import pgbinary
from fdp.warehouse.base import Retry, Session, Warehouse, retry
from fdp.warehouse.sql import FACT, POSTGRES, STAGE

CONNECT_TIMEOUT_S = 5
READ_ALL_DATA_SINCE = 140000
"""The server version that has the predefined role ``pg_read_all_data``."""
ENCODED_AHEAD = 4
"""Chunks encoded ahead of the one being sent: enough to ride out a slow chunk, few enough
that a server slower than the encoder does not make the whole batch sit in memory."""

try:
    import psycopg
    from psycopg import errors as pg_errors
    from psycopg import pq
except ImportError as exc:  # pragma: no cover - the postgres extra is missing
    raise MissingDependencyError("psycopg", "postgres") from exc

_TRANSIENT = (
    pg_errors.DeadlockDetected,
    pg_errors.SerializationFailure,
    pg_errors.LockNotAvailable,
    pg_errors.AdminShutdown,
    pg_errors.CannotConnectNow,
    pg_errors.TooManyConnections,
    psycopg.OperationalError,
)


class _PgSession(Session):
    def __init__(self, con: psycopg.Connection[Any], where: str, scrub: str | None) -> None:
        self.con = con
        self.where = where
        self.scrub = scrub

    def _wrap(self, exc: psycopg.Error) -> Exception:
        text = str(exc).strip()
        if self.scrub:
            text = text.replace(self.scrub, "***")
        if isinstance(exc, _TRANSIENT):
            return TransientError(f"PostgreSQL warehouse {self.where}: {text}")
        return TerminalError(f"PostgreSQL warehouse {self.where}: {text}")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        try:
            self.con.execute(sql, params or None)
        except psycopg.Error as exc:
            raise self._wrap(exc) from exc

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            with self.con.cursor() as cur:
                cur.executemany(sql, rows)
        except psycopg.Error as exc:
            raise self._wrap(exc) from exc

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self.con.execute(sql, params or None).fetchall()
        except psycopg.Error as exc:
            raise self._wrap(exc) from exc

    def frame(self, sql: str, schema: pl.Schema, params: Sequence[Any] = ()) -> pl.DataFrame:
        """Rows fetched in binary (no text to parse: a tenth faster for 2M fingerprints)."""
        try:
            with self.con.cursor(binary=True) as cur:
                rows = cur.execute(sql, params or None).fetchall()
        except psycopg.Error as exc:
            raise self._wrap(exc) from exc
        return pl.DataFrame(rows, schema=schema, orient="row")

    def stage(self, rows: pl.DataFrame) -> None:
        """ANALYZE tells the planner the stage's size, so the merge joins it
        by hash."""
        self._copy(STAGE, rows)
        self.execute(f"ANALYZE {STAGE}")

    def insert(self, rows: pl.DataFrame) -> None:
        """The rows go straight into the fact table, in key order: written once, the primary
        key rejecting a key that ``rows`` holds twice."""
        self._copy(FACT, in_key_order(rows.select(EnrichedStockRecord.names())))

    def insert_all(self, slices: Iterable[pl.DataFrame]) -> None:
        for rows in slices:
            self.insert(rows)

    def _copy(self, table: str, rows: pl.DataFrame) -> None:
        """Binary COPY of ``rows`` (named as ``table``'s columns), encoded on another thread
        a few chunks ahead of the one being sent."""
        copy_sql = f"COPY {table} ({', '.join(rows.columns)}) FROM STDIN (FORMAT BINARY)"
        try:
            with (
                ThreadPoolExecutor(1) as encoder,
                self.con.cursor() as cur,
                cur.copy(copy_sql) as copy,
            ):
                copy.write(pgbinary.HEADER)
                ahead: deque[Future[memoryview]] = deque()
                for chunk in pgbinary.chunks(rows):
                    ahead.append(encoder.submit(pgbinary.encode, chunk))
                    if len(ahead) > ENCODED_AHEAD:
                        copy.write(ahead.popleft().result())
                while ahead:
                    copy.write(ahead.popleft().result())
                copy.write(pgbinary.TRAILER)
        except psycopg.Error as exc:
            raise self._wrap(exc) from exc


class PostgresWarehouse(Warehouse):
    dialect = POSTGRES

    def __init__(self, url: str, policy: Retry) -> None:
        super().__init__(url, policy)
        parts = urlsplit(url)
        self._password = parts.password
        self._host = f"{parts.hostname or 'localhost'}:{parts.port or 5432}"
        self._database = parts.path.lstrip("/") or "(default)"

    def _connect(self) -> psycopg.Connection[Any]:
        def attempt() -> psycopg.Connection[Any]:
            try:
                return psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT_S)
            except psycopg.Error as exc:
                reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc)
                if self._password:
                    reason = str(reason).replace(self._password, "***")
                message = (
                    f"cannot connect to PostgreSQL at {self._host} "
                    f"(database {self._database}): {reason}"
                )
                if isinstance(exc, _TRANSIENT):
                    raise TransientError(message) from None
                raise TerminalError(message) from None

        return retry(self.policy, attempt)

    def session(self) -> AbstractContextManager[Session]:
        return self._session()

    @contextmanager
    def _session(self) -> Iterator[_PgSession]:
        con = self._connect()
        try:
            with con.transaction():
                yield _PgSession(con, f"{self._host}/{self._database}", self._password)
        except psycopg.Error as exc:
            raise _PgSession(con, self._host, self._password)._wrap(exc) from exc
        finally:
            con.close()

    def query(self, sql: str, limit: int | None = None, timeout_s: float | None = None) -> pa.Table:
        """The server prepares ``sql`` (it refuses several commands in one prepared statement)
        and describes it: a statement without result columns (COPY, DDL, SET ...) is refused
        before it runs. A query runs in a READ ONLY transaction that is always rolled back,
        under ``statement_timeout``, streamed row by row: rows stop being read at ``limit``
        (the rest of the statement is cancelled).

        A READ ONLY transaction alone lets a superuser's ``COPY ... TO`` a file or program,
        ``lo_export`` or ``pg_read_file`` through: a superuser connection therefore runs the
        statement as the predefined role ``pg_read_all_data`` (PostgreSQL 14+), which may read
        every table and nothing on the server's disk. Only ``set_config('role', ...)`` in the
        statement itself could undo that, and ``fdp.warehouse.query.check`` refuses it."""
        from fdp.warehouse.query import arrow, failed, timed_out

        con = self._connect()
        where = f"{self._host}/{self._database}"
        try:
            con.read_only = True
            with con.transaction(force_rollback=True):
                con.execute("SET LOCAL standard_conforming_strings = on")
                if timeout_s:
                    con.execute(
                        "SELECT set_config('statement_timeout', %s, true)",
                        [str(round(timeout_s * 1000))],
                    )
                superuser = con.info.parameter_status("is_superuser") == "on"
                if superuser and con.info.server_version >= READ_ALL_DATA_SINCE:
                    con.execute("SET LOCAL ROLE pg_read_all_data")
                names = _prepared_columns(con, sql)
                if not names:
                    raise ConfigError(
                        "query refused by PostgreSQL: the statement returns no rows, it is not "
                        "a query"
                    )
                stream = cast(Generator[Any, None, None], con.cursor().stream(sql))
                try:
                    rows = list(islice(stream, limit))
                finally:
                    stream.close()  # cancels the rest of the statement
        except pg_errors.QueryCanceled:
            raise timed_out(where, timeout_s) from None
        except psycopg.Error as exc:
            text = exc.diag.message_primary or str(exc)
            text = text.replace(self._password, "***") if self._password else text
            raise failed(where, text) from None
        finally:
            con.close()
        return arrow(names, rows)


def _prepared_columns(con: psycopg.Connection[Any], sql: str) -> list[str]:
    """The result's column names, duplicates included, from the server's description of
    ``sql`` prepared as the unnamed statement (nothing runs; a result without rows has them
    too, which a stream does not report)."""
    encoding = con.info.encoding
    prepared = con.pgconn.prepare(b"", sql.encode(encoding))
    if prepared.status != pq.ExecStatus.COMMAND_OK:
        raise pg_errors.error_from_result(prepared, encoding=encoding)
    shape = con.pgconn.describe_prepared(b"")
    if shape.status != pq.ExecStatus.COMMAND_OK:
        raise pg_errors.error_from_result(shape, encoding=encoding)
    return [(shape.fname(i) or b"").decode(encoding) for i in range(shape.nfields)]
