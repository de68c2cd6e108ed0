"""What every destination provides, and the one retry rule for reaching a database.

A destination opens a session (connection + transaction), bulk-stages an Arrow table into
``sql.STAGE`` and runs the shared statements; the loader never sees a driver. A database that
is down, refuses the connection or reports a lock conflict raises ``TransientError`` naming
the host (never the password); ``retry`` repeats such work with capped exponential backoff.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

import polars as pl
import pyarrow as pa

from fdp.errors import TransientError
from fdp.redaction import redact
from fdp.warehouse import sql as statements
from fdp.warehouse.sql import Dialect

T = TypeVar("T")

MAX_DELAY_S = 30.0


@dataclass(frozen=True, slots=True)
class Retry:
    """``attempts`` tries, sleeping ``base_s * 2**n`` (capped) between them."""

    attempts: int = 5
    base_s: float = 0.5

    def delays(self) -> Iterator[float]:
        for n in range(self.attempts - 1):
            yield min(self.base_s * 2**n, MAX_DELAY_S)


def retry(policy: Retry, work: Callable[[], T], sleep: Callable[[float], None] = time.sleep) -> T:
    """Run ``work``, retrying on ``TransientError``; the last error propagates."""
    delays = policy.delays()
    while True:
        try:
            return work()
        except TransientError as exc:
            delay = next(delays, None)
            if delay is None:
                raise
            sleep(max(delay, exc.retry_after or 0.0))


class Session(ABC):
    """One connection inside one open transaction."""

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    @abstractmethod
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    @abstractmethod
    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def frame(self, sql: str, schema: pl.Schema, params: Sequence[Any] = ()) -> pl.DataFrame:
        """The rows of one query as a frame of ``schema`` (values the driver returns as text,
        such as the Redshift Data API's dates, are parsed)."""
        rows = self.fetchall(sql, params)
        found = pl.DataFrame(rows, schema=list(schema), orient="row", infer_schema_length=None)
        return found.with_columns(
            pl.col(name).str.to_date()
            if dtype == pl.Date and found.schema[name] == pl.String
            # NUMERIC sums arrive as decimals of scale 0: the cast is exact
            else pl.col(name).cast(dtype)
            for name, dtype in schema.items()
        )

    @abstractmethod
    def stage(self, rows: pl.DataFrame) -> None:
        """Bulk-load ``rows`` (EnrichedStockRecord columns, or only the key) into ``sql.STAGE``."""

    def insert(self, rows: pl.DataFrame) -> None:
        """The merge, step 2: insert ``rows``, whose keys step 1 deleted (from the stage here)."""
        self.execute(statements.insert_staged())

    def insert_all(self, slices: Iterable[pl.DataFrame]) -> None:
        """``insert`` every slice of a batch (iterated once, as the database takes them)."""
        for rows in slices:
            self.stage(rows)
            self.insert(rows)


class Warehouse(ABC):
    """A destination database reached through its URL."""

    dialect: Dialect

    def __init__(self, url: str, policy: Retry) -> None:
        self.url = url
        self.policy = policy

    @property
    def where(self) -> str:
        """The destination as it may be shown to people (no password)."""
        return redact(self.url)

    @abstractmethod
    def session(self) -> AbstractContextManager[Session]:
        """Connect (a ``TransientError`` if unreachable) and open a transaction that commits
        when the block ends and rolls back if it raises."""

    @abstractmethod
    def query(self, sql: str, limit: int | None = None, timeout_s: float | None = None) -> pa.Table:
        """The first ``limit`` rows (all when None) of one read statement, run read-only and
        cancelled after ``timeout_s``. The database's own wall of ``fdp query``: callers
        taking statements from people check them first (``fdp.warehouse.query.run``)."""

    def run(self, work: Callable[[Session], T]) -> T:
        """``work`` in one transaction, retried whole while the failure is transient."""

        def attempt() -> T:
            with self.session() as session:
                return work(session)

        return retry(self.policy, attempt)
