"""Every SQL statement of the warehouse, written once and rendered per dialect.

Column names and types come from ``EnrichedStockRecord.columns()``; data values never enter
SQL text (they travel as parameters or through COPY). A dialect only says how its types are
spelled, how a parameter is written and how a loader takes the fact table's write lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

from fdp.records import Column, EnrichedStockRecord

FACT = "fact_stock_prices"
STAGE = "stage_stock_prices"
DIM_SYMBOL = "dim_symbol"
PIPELINE_RUNS = "pipeline_runs"
DQ_RESULTS = "dq_results"
VENDOR_CALLS = "vendor_calls"
MIGRATIONS = "schema_migrations"

KEY = EnrichedStockRecord.KEY

LOAD_LOCK_ID = 7_246_315_001
"""PostgreSQL advisory-lock id that serialises fact loads (any constant unique to fdp)."""

FINGERPRINT = "fingerprint"
"""The column holding a row's fingerprint (a segment's: their sum) in reconciliation queries."""
SEGMENT_ROWS = "segment_rows"
ROW_SEED_OFFSET = 1 << 62
"""PostgreSQL seeds each row's fingerprint with the days from 2000-01-01 to its trade date plus
this offset. ``hash_record_extended`` is a weighted sum of its values' hashes: with one seed for
every row, two values swapped between rows of a segment would leave the segment's sum as it
was. A seed that differs along the segment hashes each row with a different function, so the
swap shows; the offset keeps the seed from ever being 0 (which would hash 0.0 like NULL)."""

RowHash = Literal["hash_record_extended", "duckdb_hash", "fnv_hash"]


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one database spells what the statements below need."""

    name: str
    text: str
    placeholder: str
    load_lock: str | None
    fact_suffix: str = ""
    fact_primary_key: bool = True
    copy_into_fact: bool = False
    """Rows are COPY'd straight into the fact table, written once and never to a staging table
    (which, if any, holds the keys to delete); else they are staged and inserted from the
    stage."""
    key_ranges: bool = False
    """The loader passes each batch's key ranges as array parameters (``array_params``
    dialects only). When the fact table holds no row inside them, the rows are inserted, no
    DELETE. When it does, a row re-loaded with the values it has stored stays in place: the
    stored rows' fingerprints are compared with the lake's first (segments, then the keys of
    the segments that differ) and only the changed rows are replaced, so loading a batch
    again, a retry or an overlapping range, rewrites nothing. Reconciliation reads the fact
    rows inside the ranges, so a row that should not be there is seen too."""
    rebuild_key_share: float | None = None
    """A load writing at least this share of the fact table's rows (by the planner's estimate;
    any load into an empty table) drops the primary key and adds it back after the rows: one
    sorted build instead of an index insertion per row, each of which, over rows the load
    deleted, is checked against the dead version. The drop locks the table against readers
    until the load commits, so only loads that rewrite most of it take this path."""
    load_settings: tuple[str, ...] = ()
    """Statements that tune one load transaction (planning, memory, parallelism: never
    durability)."""
    array_params: bool = False
    """A parameter may be an array: many rows go in one statement (``... = ANY(?)``, one
    array per column zipped by UNNEST) instead of one statement per row."""
    unnest_in_from: bool = False
    """Arrays are zipped by ``unnest(a, b, ...)`` in FROM (PostgreSQL: unlike set-returning
    functions in a select list, it lets the planner aggregate in parallel workers), else by
    one UNNEST per array in a select list (DuckDB has no multi-array unnest)."""
    row_hash: RowHash = "fnv_hash"
    """The database function fingerprinting a row (``row_fingerprint``)."""
    lake_hash_by: Literal["pghash", "duckdb", "warehouse"] = "warehouse"
    """Who fingerprints the lake's rows, never from the rows the database stored: fdp's own
    rewrite of PostgreSQL's hashing (``fdp.warehouse.pghash``); DuckDB in process, in a
    database of its own, over the lake's Arrow rows; or the warehouse over the staging table
    COPY'd from the lake's Parquet (Redshift)."""

    def zipped(self, columns: Sequence[tuple[str, str]]) -> str:
        """A relation ``r`` of rows zipped from one array parameter per (name, SQL type)."""
        if self.unnest_in_from:
            arrays = ", ".join(f"?::{t}[]" for _, t in columns)
            return f"unnest({arrays}) AS r({_column_list([n for n, _ in columns])})"
        return f"(SELECT {', '.join(f'UNNEST(?::{t}[]) AS {n}' for n, t in columns)}) AS r"

    def params(self, sql: str) -> str:
        """``sql`` with its ``?`` placeholders in this dialect's style (``{n}``: 1, 2, ...)."""
        if "{n}" not in self.placeholder:
            return sql.replace("?", self.placeholder)
        pieces = sql.split("?")
        marks = [self.placeholder.format(n=i) for i in range(1, len(pieces))]
        return "".join(p + m for p, m in zip(pieces, [*marks, ""], strict=True))

    def sql_type(self, arrow_type: pa.DataType) -> str:
        if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
            return self.text
        if pa.types.is_floating(arrow_type):
            return "DOUBLE PRECISION"
        if pa.types.is_int64(arrow_type):
            return "BIGINT"
        if pa.types.is_integer(arrow_type):
            return "INTEGER"
        if pa.types.is_date(arrow_type):
            return "DATE"
        if pa.types.is_timestamp(arrow_type) and arrow_type.tz is not None:
            return "TIMESTAMPTZ"
        raise TypeError(f"no SQL type for Arrow type {arrow_type}")


DUCKDB = Dialect(
    "duckdb",
    text="VARCHAR",
    placeholder="?",
    load_lock=None,
    key_ranges=True,
    array_params=True,
    # Rows need no order in the fact table; keeping it made DuckDB insert each Arrow batch on
    # its own and merge them after: a quarter more CPU for 10M rows read from the lake.
    load_settings=(
        "SET SESSION preserve_insertion_order = false",
        # A load is no interactive query: no progress bar drawn on the caller's terminal.
        "SET enable_progress_bar = false",
        # DuckDB keeps the blocks a load wrote cached up to its limit (80% of RAM by default):
        # 10M rows from the lake peaked at 2.8 GiB here, 1.5 GiB with this limit, as fast.
        "SET memory_limit = '512MB'",
    ),
    row_hash="duckdb_hash",
    lake_hash_by="duckdb",
    # DuckDB's key index made loads 5x slower here (10M rows could not load in 10 s). The key
    # stays unique without it: the loader rejects a batch holding a key twice, inserts only
    # keys its ranges do not hold or whose stored row it deleted in the same transaction, and
    # DuckDB loads never overlap
    # (one writing process per file, one load at a time within it: see ``duck``).
    fact_primary_key=False,
)
POSTGRES = Dialect(
    "postgres",
    text="TEXT",
    placeholder="%s",
    load_lock=f"SELECT pg_advisory_xact_lock({LOAD_LOCK_ID})",
    copy_into_fact=True,
    key_ranges=True,
    rebuild_key_share=0.5,
    array_params=True,
    unnest_in_from=True,
    row_hash="hash_record_extended",
    lake_hash_by="pghash",
    load_settings=(
        # Compiling the reconciliation's expressions took longer (0.5-1 s) than JIT saved.
        "SET LOCAL jit = off",
        # The merge's hash joins and its staging table stay in memory (up to these sizes)
        # instead of spilling to disk: a third faster for 2M rows here.
        "SET LOCAL work_mem = '1GB'",
        "SET LOCAL temp_buffers = '1GB'",
    ),
)
REDSHIFT = Dialect(
    "redshift",
    # Redshift's TEXT is VARCHAR(256); keys are bounded by the ticker pattern, errors are not.
    text="VARCHAR(65535)",
    placeholder=":p{n}",
    load_lock=f"LOCK {FACT}",
    fact_suffix=" DISTKEY (symbol) SORTKEY (trade_date, symbol)",
)


def _column_list(names: Sequence[str], prefix: str = "") -> str:
    return ", ".join(f"{prefix}{n}" for n in names)


def create_fact(d: Dialect, columns: Sequence[Column] | None = None) -> str:
    """The fact table with ``columns`` (by default every column of today's record)."""
    cols = [
        f"{c.name} {d.sql_type(c.arrow_type)}{'' if c.nullable else ' NOT NULL'}"
        for c in (EnrichedStockRecord.columns() if columns is None else columns)
    ]
    if d.fact_primary_key:
        cols.append(f"PRIMARY KEY ({_column_list(KEY)})")
    body = ",\n    ".join(cols)
    return f"CREATE TABLE IF NOT EXISTS {FACT} (\n    {body}\n){d.fact_suffix}"


def add_fact_column(d: Dialect, column: Column) -> str:
    """A column added after the table was created: nullable, as rows loaded before it have
    no value (the loader always supplies one)."""
    return add_column(FACT, column.name, d.sql_type(column.arrow_type))


def table_columns(table: str) -> str:
    """A table's column names (lower case on every dialect: fdp creates them so)."""
    return f"SELECT column_name FROM information_schema.columns WHERE table_name = '{table}'"


def add_column(table: str, name: str, sql_type: str) -> str:
    """A nullable column added to ``table``."""
    return f"ALTER TABLE {table} ADD COLUMN {name} {sql_type}"


def create_migrations(d: Dialect) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {MIGRATIONS} (version INTEGER PRIMARY KEY, "
        f"name {d.text} NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    )


def create_dim_symbol(d: Dialect) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {DIM_SYMBOL} (symbol {d.text} PRIMARY KEY, "
        f"name {d.text}, sector {d.text}, industry {d.text}, exchange {d.text}, "
        f"currency {d.text}, updated_at TIMESTAMPTZ NOT NULL)"
    )


def create_pipeline_runs(d: Dialect) -> str:
    t = d.text
    return (
        f"CREATE TABLE IF NOT EXISTS {PIPELINE_RUNS} (stage {t} NOT NULL, run_date DATE NOT NULL, "
        f"run_id {t} NOT NULL, status {t} NOT NULL, rows_in BIGINT, rows_out BIGINT, "
        f"rows_rejected BIGINT, duration_s DOUBLE PRECISION, started_at TIMESTAMPTZ NOT NULL, "
        f"finished_at TIMESTAMPTZ, error {t}, PRIMARY KEY (stage, run_date))"
    )


def create_dq_results(d: Dialect) -> str:
    t = d.text
    return (
        f"CREATE TABLE IF NOT EXISTS {DQ_RESULTS} (run_date DATE NOT NULL, source {t} NOT NULL, "
        f"expectation {t} NOT NULL, column_name {t} NOT NULL, success BOOLEAN NOT NULL, "
        f"element_count BIGINT, unexpected_count BIGINT, unexpected_percent DOUBLE PRECISION, "
        f"observed_value {t}, recorded_at TIMESTAMPTZ NOT NULL, "
        f"PRIMARY KEY (run_date, source, expectation, column_name))"
    )


def create_vendor_calls(d: Dialect) -> str:
    t = d.text
    return (
        f"CREATE TABLE IF NOT EXISTS {VENDOR_CALLS} (source {t} NOT NULL, day DATE NOT NULL, "
        f"calls BIGINT NOT NULL, quota BIGINT NOT NULL, recorded_at TIMESTAMPTZ NOT NULL, "
        f"PRIMARY KEY (source, day))"
    )


def select_migrations() -> str:
    return f"SELECT version FROM {MIGRATIONS}"


def insert_migration(d: Dialect) -> str:
    return d.params(f"INSERT INTO {MIGRATIONS} (version, name, applied_at) VALUES (?, ?, ?)")


def _same_key(left: str, right: str, key: Sequence[str] = KEY) -> str:
    """The join condition of two relations on ``key``."""
    return " AND ".join(f"{left}.{k} = {right}.{k}" for k in key)


def create_stage(keys_only: bool = False) -> str:
    """A session-private staging table shaped like the fact table, or holding only its key
    columns (``drop_stage`` ends it)."""
    if keys_only:
        return f"CREATE TEMP TABLE {STAGE} AS SELECT {_column_list(KEY)} FROM {FACT} WITH NO DATA"
    return f"CREATE TEMP TABLE {STAGE} (LIKE {FACT})"


def delete_staged_keys() -> str:
    """The merge, step 1: remove every fact row whose key is being loaded."""
    return f"DELETE FROM {FACT} USING {STAGE} WHERE {_same_key(FACT, STAGE)}"


def insert_staged() -> str:
    """The merge, step 2: insert the staged rows (unique per key: the loader ensures it)."""
    cols = _column_list(EnrichedStockRecord.names())
    return f"INSERT INTO {FACT} ({cols}) SELECT {cols} FROM {STAGE}"


def insert_staged_deduplicated() -> str:
    """Step 2 when staging may hold a key twice (a raw COPY): the latest processed row wins."""
    cols = _column_list(EnrichedStockRecord.names())
    return (
        f"INSERT INTO {FACT} ({cols}) SELECT {cols} FROM (SELECT {cols}, ROW_NUMBER() OVER "
        f"(PARTITION BY {_column_list(KEY)} ORDER BY processing_timestamp DESC) AS fdp_rank "
        f"FROM {STAGE}) AS ranked WHERE fdp_rank = 1"
    )


def drop_stage() -> str:
    return f"DROP TABLE IF EXISTS {STAGE}"


RANGE_FROM = "range_from"
RANGE_TO = "range_to"
RANGE_COLUMNS = (*KEY[:-1], RANGE_FROM, RANGE_TO)
"""The columns of a batch's key ranges: per value of the leading key columns, the first and
last value of the last one."""


def _ranges(d: Dialect) -> tuple[str, str]:
    """The key ranges as a relation ``r`` zipped from one array parameter per
    ``RANGE_COLUMNS`` (arrays, unlike a temporary table, leave PostgreSQL free to aggregate in
    parallel workers), and the condition that a fact row ``f`` falls inside one."""
    *group, last = KEY
    types = {c.name: d.sql_type(c.arrow_type) for c in EnrichedStockRecord.columns()}
    ranges = d.zipped(
        [(k, types[k]) for k in group] + [(b, types[last]) for b in (RANGE_FROM, RANGE_TO)]
    )
    inside = f"{_same_key('f', 'r', group)} AND f.{last} BETWEEN r.{RANGE_FROM} AND r.{RANGE_TO}"
    return ranges, inside


def _in_ranges(d: Dialect) -> str:
    """The fact rows inside the key ranges (parameters)."""
    ranges, inside = _ranges(d)
    return f"{FACT} AS f JOIN {ranges} ON {inside}"


def delete_in_ranges(d: Dialect) -> str:
    """Remove every fact row inside the key ranges (parameters): the merge's step 1 for the
    segments whose every stored row it replaces, far cheaper than joining each key (a DELETE
    of 2M rows here: 2 s by ranges, 5 s by staged keys)."""
    ranges, inside = _ranges(d)
    return d.params(f"DELETE FROM {FACT} AS f USING {ranges} WHERE {inside}")


def fact_in_ranges(d: Dialect) -> str:
    """One row if the fact table holds any row inside the key ranges, else none."""
    return d.params(f"SELECT 1 FROM {_in_ranges(d)} LIMIT 1")


def fact_is_empty() -> str:
    """One row if the fact table holds any row at all, else none."""
    return f"SELECT 1 FROM {FACT} LIMIT 1"


def fact_row_estimate() -> str:
    """PostgreSQL's estimate of the fact table's rows (-1 before it was ever analyzed)."""
    return f"SELECT reltuples FROM pg_class WHERE oid = '{FACT}'::regclass"


FACT_KEY = f"{FACT}_pkey"
"""The name PostgreSQL gives the fact table's primary key (``create_fact``)."""


def drop_fact_key() -> str:
    return f"ALTER TABLE {FACT} DROP CONSTRAINT {FACT_KEY}"


def add_fact_key() -> str:
    return f"ALTER TABLE {FACT} ADD CONSTRAINT {FACT_KEY} PRIMARY KEY ({_column_list(KEY)})"


def row_fingerprint(d: Dialect, alias: str = "f") -> str:
    """Each row's 64-bit fingerprint over every column of ``alias``, NULLs included.

    ``hash_record_extended``: PostgreSQL >= 14, seeded per row (``ROW_SEED_OFFSET``).
    ``duckdb_hash``: DuckDB's ``hash`` of the columns in order, hashed again: DuckDB combines a
    row's values by multiply-and-XOR, and a row hash that is not rehashed could let two values
    swapped between rows keep a segment's sum (one chance in 2**32 per swap).
    ``fnv_hash``: Redshift's FNV-1a chained over the columns, each preceded by its NULL flag
    (text: its byte length, -1 for NULL), so adjacent texts cannot trade bytes."""
    columns = [f"{alias}.{c.name}" for c in EnrichedStockRecord.columns()]
    if d.row_hash == "hash_record_extended":
        last = f"{alias}.{KEY[-1]}"
        seed = f"(({last} - DATE '2000-01-01') + {ROW_SEED_OFFSET})"
        return f"hash_record_extended(ROW({', '.join(columns)}), {seed})"
    if d.row_hash == "duckdb_hash":
        return f"hash(hash({', '.join(columns)}))"
    folded = "0"
    for col, ref in zip(EnrichedStockRecord.columns(), columns, strict=True):
        if d.sql_type(col.arrow_type) == d.text:
            flag, value = f"COALESCE(OCTET_LENGTH({ref}), -1)", f"COALESCE({ref}, '')"
        else:
            flag = f"CASE WHEN {ref} IS NULL THEN 1 ELSE 0 END"
            value = f"COALESCE({ref}, {_zero(d.sql_type(col.arrow_type))})"
        folded = f"FNV_HASH({value}, FNV_HASH({flag}, {folded}))"
    return folded


def _zero(sql_type: str) -> str:
    """A value of ``sql_type`` standing in for NULL (the NULL flag beside it tells them apart)."""
    if sql_type == "DATE":
        return "DATE '2000-01-01'"
    if sql_type == "TIMESTAMPTZ":
        return "TIMESTAMPTZ '2000-01-01 00:00:00+00'"
    return "0"


def _fingerprinted(d: Dialect, over_ranges: bool) -> str:
    """The fact rows being reconciled: inside the key ranges (parameters), or of the staged
    keys."""
    if over_ranges:
        return _in_ranges(d)
    return f"{FACT} AS f JOIN {STAGE} AS s ON {_same_key('f', 's')}"


def segment_fingerprints(d: Dialect, over_ranges: bool) -> str:
    """Per segment (the leading key columns): the rows and the sum of their fingerprints, over
    the fact rows inside the key ranges or of the staged keys (the sum is exact: PostgreSQL's
    NUMERIC, DuckDB's HUGEINT)."""
    group = _column_list(KEY[:-1], "f.")
    return d.params(
        f"SELECT {group}, COUNT(*) AS {SEGMENT_ROWS}, SUM({row_fingerprint(d)}) AS {FINGERPRINT} "
        f"FROM {_fingerprinted(d, over_ranges)} GROUP BY {group}"
    )


def fingerprints(d: Dialect, over_ranges: bool) -> str:
    """Each fact row's key and fingerprint, inside the key ranges or of the staged keys."""
    return d.params(
        f"SELECT {_column_list(KEY, 'f.')}, {row_fingerprint(d)} AS {FINGERPRINT} "
        f"FROM {_fingerprinted(d, over_ranges)}"
    )


def probe_fingerprint(d: Dialect) -> str:
    """The fingerprint of one row given as parameters, one per column (a probe of the
    server's hashing)."""
    values = ", ".join(
        f"CAST(? AS {d.sql_type(c.arrow_type)}) AS {c.name}" for c in EnrichedStockRecord.columns()
    )
    return d.params(f"SELECT {row_fingerprint(d)} FROM (SELECT {values}) AS f")


def lake_fingerprints(d: Dialect, source: str = STAGE) -> str:
    """Each lake row's key and fingerprint, by the database's own function, over ``source``:
    the staging table, or the lake's rows in an in-process database."""
    key = _column_list(KEY, "f.")
    return f"SELECT {key}, {row_fingerprint(d)} AS {FINGERPRINT} FROM {source} AS f"


def delete_pipeline_run(d: Dialect) -> str:
    return d.params(f"DELETE FROM {PIPELINE_RUNS} WHERE stage = ? AND run_date = ?")


PIPELINE_RUN_COLUMNS = (
    "stage",
    "run_date",
    "run_id",
    "status",
    "rows_in",
    "rows_out",
    "rows_rejected",
    "duration_s",
    "started_at",
    "finished_at",
    "error",
    "details",
)


def insert_values(d: Dialect, table: str, columns: Sequence[str]) -> str:
    """One row's INSERT into ``table``, a parameter per column (values never enter the SQL)."""
    marks = ", ".join("?" for _ in columns)
    return d.params(f"INSERT INTO {table} ({_column_list(columns)}) VALUES ({marks})")


def insert_pipeline_run(d: Dialect) -> str:
    return insert_values(d, PIPELINE_RUNS, PIPELINE_RUN_COLUMNS)


def delete_vendor_calls(d: Dialect) -> str:
    return d.params(f"DELETE FROM {VENDOR_CALLS} WHERE source = ? AND day = ?")


def insert_vendor_calls(d: Dialect) -> str:
    return d.params(
        f"INSERT INTO {VENDOR_CALLS} (source, day, calls, quota, recorded_at)"
        " VALUES (?, ?, ?, ?, ?)"
    )


def delete_dq_batch(d: Dialect) -> str:
    return d.params(f"DELETE FROM {DQ_RESULTS} WHERE run_date = ? AND source = ?")


DQ_COLUMNS = (
    "run_date",
    "source",
    "expectation",
    "column_name",
    "success",
    "element_count",
    "unexpected_count",
    "unexpected_percent",
    "observed_value",
    "recorded_at",
)


def insert_dq_result(d: Dialect) -> str:
    return insert_values(d, DQ_RESULTS, DQ_COLUMNS)


SYMBOL_COLUMNS = ("symbol", "name", "sector", "industry", "exchange", "currency", "updated_at")


def delete_symbol(d: Dialect) -> str:
    return d.params(f"DELETE FROM {DIM_SYMBOL} WHERE symbol = ?")


def insert_symbol(d: Dialect) -> str:
    return insert_values(d, DIM_SYMBOL, SYMBOL_COLUMNS)


def delete_symbols(d: Dialect) -> str:
    """``delete_symbol`` for an array of symbols (``array_params`` dialects)."""
    return d.params(f"DELETE FROM {DIM_SYMBOL} WHERE symbol = ANY(?)")


def insert_symbols(d: Dialect) -> str:
    """``insert_symbol`` with one array per column (``array_params`` dialects)."""
    types = [d.text] * (len(SYMBOL_COLUMNS) - 1) + ["TIMESTAMPTZ"]
    rows = d.zipped(list(zip(SYMBOL_COLUMNS, types, strict=True)))
    return d.params(
        f"INSERT INTO {DIM_SYMBOL} ({_column_list(SYMBOL_COLUMNS)}) SELECT * FROM {rows}"
    )


def select_symbols() -> str:
    return f"SELECT symbol FROM {DIM_SYMBOL}"


def select_completed_run_dates(d: Dialect) -> str:
    return d.params(
        f"SELECT run_date FROM {PIPELINE_RUNS} WHERE stage = ? AND status = 'success'"
        " AND run_date BETWEEN ? AND ?"
    )


HISTORY = "fact_stock_prices_history"
"""The versions of fact rows that later runs replaced (``fdp.history``), for ``as_of`` reads."""
VALID_TO = "valid_to"


def create_history() -> str:
    """The history table: the fact table's columns as they are (so it starts in step with
    whatever migrations made them) and ``valid_to``. A later migration that adds a fact column
    adds it here too."""
    return f"CREATE TABLE {HISTORY} AS SELECT * FROM {FACT} WHERE 1 = 0"


def add_history_valid_to() -> str:
    return add_column(HISTORY, VALID_TO, "DATE")


def delete_history_run(d: Dialect) -> str:
    """The versions one run replaced (a re-run of the load replaces them again)."""
    return d.params(f"DELETE FROM {HISTORY} WHERE {VALID_TO} = ?")


def insert_history(d: Dialect, names: Sequence[str]) -> str:
    return insert_values(d, HISTORY, names)


CORPORATE_ACTIONS = "corporate_actions"
"""The declared corporate actions (``fdp.actions``), replaced whole by every load."""
ACTION_COLUMNS = ("symbol", "ex_date", "kind", "value", "declared_at")


def create_corporate_actions(d: Dialect) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {CORPORATE_ACTIONS} (symbol {d.text} NOT NULL, "
        f"ex_date DATE NOT NULL, kind {d.text} NOT NULL, value DOUBLE PRECISION NOT NULL, "
        f"declared_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (symbol, ex_date, kind))"
    )


def delete_actions() -> str:
    return f"DELETE FROM {CORPORATE_ACTIONS}"


def insert_actions(d: Dialect) -> str:
    return insert_values(d, CORPORATE_ACTIONS, ACTION_COLUMNS)


def rows_filter(symbols: int, start: bool, end: bool, alias: str) -> str:
    """A read's condition on ``alias``'s rows: ``symbols`` parameters, then a start and an end
    date parameter when given (``fdp.data.read``)."""
    parts = ["1 = 1"]
    if symbols:
        parts.append(f"{alias}.symbol IN ({', '.join('?' for _ in range(symbols))})")
    if start:
        parts.append(f"{alias}.trade_date >= ?")
    if end:
        parts.append(f"{alias}.trade_date <= ?")
    return " AND ".join(parts)


def select_rows(d: Dialect, names: Sequence[str], where: str) -> str:
    """The fact rows ``where`` (on alias ``f``) holds, sorted by key."""
    return d.params(
        f"SELECT {_column_list(names, 'f.')} FROM {FACT} f WHERE {where}"
        f" ORDER BY {_column_list(KEY, 'f.')}"
    )


def select_rows_as_of(d: Dialect, names: Sequence[str], history: str, fact: str) -> str:
    """The rows valid as of an ingest date (``fdp.data``): per key, the replaced version with
    the smallest ``valid_to`` after it, else the current row, either only if ingested by then.
    Parameters: ``history``'s (alias ``h``), the date twice, ``fact``'s (alias ``f``), the date
    twice."""
    columns = _column_list(names)
    return d.params(
        f"SELECT {columns} FROM ("
        f"SELECT {_column_list(names, 'h.')}, ROW_NUMBER() OVER ("
        f"PARTITION BY h.symbol, h.trade_date ORDER BY h.{VALID_TO}) AS version"
        f" FROM {HISTORY} h WHERE {history} AND h.{VALID_TO} > ? AND h.ingest_date <= ?"
        ") v WHERE version = 1"
        f" UNION ALL SELECT {_column_list(names, 'f.')} FROM {FACT} f WHERE {fact}"
        f" AND f.ingest_date <= ? AND NOT EXISTS (SELECT 1 FROM {HISTORY} h"
        f" WHERE {_same_key('h', 'f')} AND h.{VALID_TO} > ?)"
        f" ORDER BY {_column_list(KEY)}"
    )
