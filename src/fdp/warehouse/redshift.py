"""Amazon Redshift through the Redshift Data API (boto3): Redshift's documented merge.

The run's rows are written once as Parquet to an S3 staging prefix, COPY'd into a temporary
staging table, de-duplicated on the key, then DELETE + INSERT in one transaction (the shared
statements of ``sql``). The Data API's session reuse keeps one connection, so the temporary
table and the transaction live across calls exactly as on PostgreSQL.

URL: ``redshift://[db_user@]<cluster-or-workgroup>/<database>?iam_role=ARN&staging=s3://b/p``
with optional ``region=``, ``serverless=true`` (a workgroup) and ``secret_arn=``;
``iam_role=default`` is the namespace's default role. ``fdp.warehouse.deployment`` builds this
URL from the deployment's secret and workgroup.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import polars as pl
import pyarrow as pa

from fdp.errors import ConfigError, MissingDependencyError, TerminalError, TransientError
from fdp.records import EnrichedStockRecord
from fdp.storage import filesystem, parquet_bytes, put_bytes
from fdp.warehouse.base import Retry, Session, Warehouse
from fdp.warehouse.sql import REDSHIFT, STAGE, insert_staged_deduplicated

SESSION_KEEP_ALIVE_S = 300
POLL_S = (0.05, 0.1, 0.2, 0.5, 1.0)
_S3_URI = re.compile(r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/[A-Za-z0-9_.=/\-]*)?$")
_IAM_ROLE = re.compile(r"^arn:aws[a-z\-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/\-]{1,512}$")


def copy_statement(s3_uri: str, iam_role: str) -> str:
    """COPY of one staged Parquet object. The URI and role are configuration, not data, and
    are checked against strict patterns because COPY takes no parameters; ``default`` is the
    namespace's default IAM role."""
    if not _S3_URI.match(s3_uri):
        raise ConfigError(f"Redshift staging location is not a plain s3:// URI: {s3_uri!r}")
    if iam_role == "default":
        role = "default"
    elif _IAM_ROLE.match(iam_role):
        role = f"'{iam_role}'"
    else:
        raise ConfigError(f"Redshift iam_role is not an IAM role ARN or default: {iam_role!r}")
    cols = ", ".join(EnrichedStockRecord.names())
    return f"COPY {STAGE} ({cols}) FROM '{s3_uri}' IAM_ROLE {role} FORMAT AS PARQUET"


@dataclass(frozen=True, slots=True)
class Target:
    """Where statements go: a provisioned cluster or a serverless workgroup."""

    name: str
    database: str
    serverless: bool
    region: str | None
    db_user: str | None
    secret_arn: str | None
    iam_role: str
    staging: str

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        missing = [k for k in ("iam_role", "staging") if k not in query]
        if parts.scheme != "redshift" or not parts.hostname or missing:
            raise ConfigError(
                "Redshift URL must look like redshift://[user@]cluster/db"
                f"?iam_role=ARN&staging=s3://bucket/prefix (missing {missing or 'host'})"
            )
        return cls(
            name=parts.hostname,
            database=parts.path.lstrip("/") or "dev",
            serverless=query.get("serverless", "false").lower() in ("1", "true", "yes"),
            region=query.get("region"),
            db_user=parts.username,
            secret_arn=query.get("secret_arn"),
            iam_role=query["iam_role"],
            staging=query["staging"].rstrip("/"),
        )

    def where(self) -> dict[str, str]:
        """The Data API arguments naming the target and the credentials to use."""
        args = {"Database": self.database}
        args["WorkgroupName" if self.serverless else "ClusterIdentifier"] = self.name
        if self.secret_arn:
            args["SecretArn"] = self.secret_arn
        elif self.db_user and not self.serverless:
            args["DbUser"] = self.db_user
        return args


def bind(sql: str, params: Sequence[Any]) -> tuple[str, list[dict[str, str]]]:
    """Data API parameters for ``sql``; the API has no NULL value, so a ``None`` parameter's
    placeholder becomes the keyword NULL (no data value enters the text)."""
    for i, value in enumerate(params, 1):
        if value is None:
            sql = re.sub(rf":p{i}\b", "NULL", sql)
    named = [{"name": f"p{i}", "value": _text(v)} for i, v in enumerate(params, 1) if v is not None]
    return sql, named


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def _field(cell: dict[str, Any]) -> Any:
    if cell.get("isNull"):
        return None
    for key in ("stringValue", "longValue", "doubleValue", "booleanValue"):
        if key in cell:
            return cell[key]
    return None


class _RedshiftSession(Session):
    def __init__(self, client: Any, target: Target, where: str) -> None:
        self.client = client
        self.target = target
        self.where = where
        self.session_id: str | None = None

    def _submit(self, sql: str, params: Sequence[Any]) -> str:
        sql, named = bind(sql, params)
        args: dict[str, Any] = {"Sql": sql}
        if named:
            args["Parameters"] = named
        if self.session_id:
            args["SessionId"] = self.session_id
        else:
            args |= self.target.where() | {"SessionKeepAliveSeconds": SESSION_KEEP_ALIVE_S}
        try:
            answer = self.client.execute_statement(**args)
        except Exception as exc:
            raise TransientError(f"Redshift Data API at {self.where}: {exc}") from exc
        self.session_id = answer.get("SessionId", self.session_id)
        statement_id: str = answer["Id"]
        for delay in (*POLL_S, *([POLL_S[-1]] * 3600)):
            state = self.client.describe_statement(Id=statement_id)
            if state["Status"] == "FINISHED":
                return statement_id
            if state["Status"] in ("FAILED", "ABORTED"):
                raise TerminalError(f"Redshift {self.where}: {state.get('Error', state['Status'])}")
            time.sleep(delay)
        raise TransientError(f"Redshift {self.where}: statement {statement_id} did not finish")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._submit(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        for row in rows:
            self._submit(sql, row)

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.result(sql, params)[1]

    def result(
        self, sql: str, params: Sequence[Any] = (), limit: int | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """The column names and the first ``limit`` rows (all when None): pages stop being
        fetched once there are enough."""
        statement_id = self._submit(sql, params)
        names: list[str] = []
        rows: list[tuple[Any, ...]] = []
        token: str | None = None
        while limit is None or len(rows) < limit:
            page = self.client.get_statement_result(
                Id=statement_id, **({"NextToken": token} if token else {})
            )
            names = names or [c.get("name", "") for c in page.get("ColumnMetadata", [])]
            rows += [tuple(_field(c) for c in record) for record in page.get("Records", [])]
            token = page.get("NextToken")
            if not token:
                break
        return names, rows[:limit]

    def stage(self, rows: pl.DataFrame) -> None:
        uri = f"{self.target.staging}/{STAGE}/{uuid.uuid4().hex}.parquet"
        fs, path = filesystem(uri)
        put_bytes(fs, path, parquet_bytes(rows.select(EnrichedStockRecord.names()).to_arrow()))
        self.execute(copy_statement(uri, self.target.iam_role))

    def insert(self, rows: pl.DataFrame) -> None:
        """Staging may hold a key twice (a raw COPY): the latest processed row wins."""
        self.execute(insert_staged_deduplicated())


class RedshiftWarehouse(Warehouse):
    dialect = REDSHIFT

    def __init__(self, url: str, policy: Retry) -> None:
        super().__init__(url, policy)
        self.target = Target.parse(url)

    def _client(self) -> Any:
        try:
            import boto3
        except ImportError as exc:  # pragma: no cover - the aws extra is missing
            raise MissingDependencyError("boto3", "aws") from exc
        return boto3.client("redshift-data", region_name=self.target.region)

    @contextmanager
    def session(self) -> Iterator[Session]:
        session = _RedshiftSession(self._client(), self.target, self.target.name)
        session.execute("BEGIN")
        try:
            yield session
        except BaseException:
            session.execute("ROLLBACK")
            raise
        session.execute("COMMIT")

    def query(self, sql: str, limit: int | None = None, timeout_s: float | None = None) -> pa.Table:
        """In a READ ONLY transaction, always rolled back, under ``statement_timeout``.
        Whether the Data API refuses several statements in one call is not documented: the
        caller's check (``fdp.warehouse.query.check``) is the wall that stops them. Not run
        here (no Redshift in the tests)."""
        from fdp.warehouse.query import arrow

        session = _RedshiftSession(self._client(), self.target, self.target.name)
        session.execute("BEGIN READ ONLY")
        try:
            if timeout_s:
                session.execute(f"SET statement_timeout TO {round(timeout_s * 1000)}")
            names, rows = session.result(sql, limit=limit)
        finally:
            session.execute("ROLLBACK")
        return arrow(names, rows)
