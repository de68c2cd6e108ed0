"""PostgreSQL through psycopg 3: the keys into a session-private staging table, the DELETE of
those keys, then the rows COPY'd straight into the fact table.

Rows reach the server in binary COPY format built with numpy (``pgbinary``, no per-row
Python): exact values, and cheaper for the server than parsing text. Loads serialise on a
transaction-level advisory lock (``sql.POSTGRES.load_lock``), so concurrent loads never
deadlock or lose rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import polars as pl
import pyarrow as pa

from fdp.errors import MissingDependencyError, TerminalError, TransientError
from fdp.records import Column, EnrichedStockRecord
from fdp.warehouse import pgbinary
from fdp.warehouse.base import Retry, Session, Warehouse, retry
from fdp.warehouse.sql import FACT, KEY, POSTGRES, STAGE

COPY_BATCH_ROWS = 200_000
CONNECT_TIMEOUT_S = 5
KEY_COLUMNS = tuple(c for c in EnrichedStockRecord.columns() if c.name in KEY)

try:
    import psycopg
    from psycopg import errors as pg_errors
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

    def rows(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """The column names and rows of one statement."""
        try:
            cur = self.con.execute(sql)
            return [d.name for d in cur.description or ()], cur.fetchall()
        except psycopg.Error as exc:
            raise self._wrap(exc) from exc

    def stage(self, rows: pl.DataFrame) -> None:
        """Only the keys are staged: the merge's DELETE and the checksum join need no more."""
        self._copy(STAGE, KEY_COLUMNS, rows)

    def insert(self, rows: pl.DataFrame) -> None:
        """The rows go straight into the fact table: written once, the primary key rejecting
        a key that ``rows`` holds twice."""
        self._copy(FACT, EnrichedStockRecord.columns(), rows)

    def _copy(self, table: str, columns: tuple[Column, ...], rows: pl.DataFrame) -> None:
        """Binary COPY of ``rows``' ``columns``; the next chunk is encoded while one is sent."""
        names = ", ".join(c.name for c in columns)
        copy_sql = f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)"
        chunks = [rows.slice(i, COPY_BATCH_ROWS) for i in range(0, rows.height, COPY_BATCH_ROWS)]
        try:
            with (
                ThreadPoolExecutor(1) as encoder,
                self.con.cursor() as cur,
                cur.copy(copy_sql) as copy,
            ):
                copy.write(pgbinary.HEADER)
                for pieces in encoder.map(partial(pgbinary.rows, columns=columns), chunks):
                    for piece in pieces:
                        copy.write(piece.data)
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

    def query(self, sql: str) -> pa.Table:
        with self._session() as session:
            names, rows = session.rows(sql)
        return pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)})
