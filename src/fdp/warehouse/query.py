"""``fdp query``: one read statement, checked before it reaches the database, then run read-only.

Two walls, so a gap in one is not a write:

1. ``check`` parses the text with sqlglot in the warehouse's dialect, before any connection is
   made, and accepts exactly one query (SELECT, WITH ... SELECT, VALUES, set operations,
   ``EXPLAIN`` of one; DuckDB's DESCRIBE / SHOW / SUMMARIZE, which DuckDB itself runs as
   SELECTs). It refuses data-modifying CTEs, SELECT ... INTO, row locks, calls of functions
   known to touch files, the network, other sessions or server state, SQL hidden in a string
   (``query_to_xml``, ``query()``), and text the databases may read differently from sqlglot
   (nested comments, ``U&`` escapes, NUL characters).
2. ``Warehouse.query`` (each destination's read-only runner) makes the database refuse too:
   PostgreSQL prepares the statement (the server refuses several commands in one), refuses one
   without result columns before it runs, and runs it in a READ ONLY transaction that is always
   rolled back, under a statement timeout, as ``pg_read_all_data`` when connected as a
   superuser (no server files or programs); DuckDB's own parser must find one SELECT or
   EXPLAIN, on a file opened read-only with external access off and the configuration locked;
   Redshift runs it in a READ ONLY transaction, rolled back.

Neither wall alone is enough. A superuser's READ ONLY transaction still lets ``COPY ... TO``
a file or program, ``lo_export`` and ``pg_read_file`` through (the role and the check stop
them), ``set_config('role', ...)`` inside the statement would undo the role (the check refuses
it); DuckDB always lets a statement attach its own database file, so ``ATTACH ':memory:' ...;
USE ...; DETACH ...; ATTACH <file> (READ_WRITE); DROP ...`` drops tables despite every setting
(both one-statement checks stop it).

Only the rows to print (plus one, to know whether there are more) leave the database.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn

import pyarrow as pa
import sqlglot
from sqlglot import Token, TokenType, exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError

from fdp.errors import ConfigError, TerminalError
from fdp.warehouse.base import Warehouse

MAX_CHARS = 100_000
"""Longer statements are refused before parsing: no analyst query is this long, and a parser
fed megabytes of nesting only burns memory."""

_QUERIES: tuple[type[exp.Expr], ...] = (exp.Query, exp.Values)
_DUCKDB_READS: tuple[type[exp.Expr], ...] = (exp.Describe, exp.Show, exp.Summarize)
"""Statements DuckDB's own parser classifies as SELECT (they read the catalog or a table)."""

_STATEMENTS: tuple[type[exp.Expr], ...] = (
    *(exp.Set, exp.Pragma, exp.Use, exp.Attach, exp.Detach, exp.Install, exp.Transaction),
    *(exp.Commit, exp.Rollback, exp.Drop, exp.Alter, exp.TruncateTable, exp.Grant, exp.Revoke),
    *(exp.Kill, exp.Analyze),
)
"""Statements that can only stand first: refused wherever a parse puts one inside a query."""
_REFUSED_NODES: tuple[tuple[type[exp.Expr] | tuple[type[exp.Expr], ...], str], ...] = (
    (exp.DML, "it writes data (INSERT, UPDATE, DELETE, MERGE or COPY)"),
    (exp.DDL, "it changes the schema"),
    (exp.Into, "SELECT ... INTO creates a table"),
    (exp.Lock, "FOR UPDATE / FOR SHARE locks rows"),
    (exp.Command, "it holds a statement the checker cannot read"),
    (_STATEMENTS, "it holds a statement that is not a query"),
)

_REFUSED_CALLS = frozenset(
    {
        # PostgreSQL: server files, SQL given as text
        *("pg_stat_file", "loread", "lowrite", "ts_stat"),
        # PostgreSQL: server and session state
        *("set_config", "nextval", "setval", "pg_notify", "pg_stat_statements_reset"),
        *("pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile"),
        *("pg_switch_wal", "pg_create_restore_point", "pg_promote", "pg_start_backup"),
        *("pg_stop_backup", "pg_wal_replay_pause", "pg_wal_replay_resume"),
        *("pg_import_system_collations", "pg_log_backend_memory_contexts"),
        *("pg_create_physical_replication_slot", "pg_create_logical_replication_slot"),
        *("pg_copy_physical_replication_slot", "pg_copy_logical_replication_slot"),
        *("pg_drop_replication_slot", "pg_replication_slot_advance"),
        # DuckDB: files, the network, the environment, SQL given as text
        *("glob", "sniff_csv", "delta_scan", "getenv", "load_aws_credentials"),
        *("query", "query_table", "json_execute_serialized_sql"),
        # DuckDB: database and session state
        *("checkpoint", "force_checkpoint", "write_log", "truncate_duckdb_logs"),
    }
)
_REFUSED_CALL_PREFIXES = (
    "pg_read_",  # pg_read_file, pg_read_binary_file
    "pg_ls_",  # directory listings
    "pg_file_",  # adminpack writes
    "lo_",  # large objects: lo_import / lo_export read and write server files
    "dblink",  # statements in another session, outside this transaction
    "pg_advisory",
    "pg_try_advisory",
    "pg_backup_",
    "pg_logical_",
    "pg_replication_",
    "pg_stat_reset",
    "query_to_",  # query_to_xml(text): runs SQL the checker never sees
    "cursor_to_",
    "read_",  # DuckDB: read_csv, read_text, read_blob, read_parquet, read_json ...
    "parquet_",
    "iceberg_",
    "sqlite_",
    "postgres_",
    "mysql_",
    "arrow_scan",  # DuckDB: scans of raw memory pointers
    "pandas_scan",
    "python_",
    "enable_",  # DuckDB: logging, profiling, object cache
    "disable_",
    "register_external",
    "deregister_external",
    "create_external",
    "destroy_external",
    "add_grammar",
    "remove_grammar",
)

_STRING_TOKENS = frozenset(
    {
        TokenType.STRING,
        TokenType.NATIONAL_STRING,
        TokenType.RAW_STRING,
        TokenType.HEREDOC_STRING,
        TokenType.HEX_STRING,
        TokenType.BIT_STRING,
        TokenType.BYTE_STRING,
        TokenType.UNICODE_STRING,
    }
)
_EXPLAIN_WORDS = frozenset({"analyze", "analyse", "verbose"})


@dataclass(frozen=True, slots=True)
class Rows:
    """The first rows of a result, and whether the result had more."""

    table: pa.Table
    more: bool


def run(warehouse: Warehouse, sql: str, limit: int, timeout_s: float) -> Rows:
    """The first ``limit`` rows of ``sql``, checked (``check``) then run read-only."""
    if limit < 0:
        raise ConfigError(f"--limit must be 0 or more, not {limit}")
    statement = check(sql, warehouse.dialect.name)
    table = warehouse.query(statement, limit + 1, timeout_s)
    return Rows(table.slice(0, limit), table.num_rows > limit)


def check(sql: str, dialect: str) -> str:
    """``sql`` if it is one read statement in ``dialect`` (else a ``ConfigError`` saying why),
    without the blanks and semicolons around it."""
    statement = sql.strip().rstrip(";").strip()
    if not statement:
        _refuse("the statement is empty")
    if len(statement) > MAX_CHARS:
        _refuse(f"the statement is longer than {MAX_CHARS:,} characters")
    if "\x00" in statement:
        _refuse("the statement contains a NUL character")
    tokens = _tokens(statement, dialect)
    if not tokens:
        _refuse("the statement is only a comment")
    if tokens[0].token_type == TokenType.COMMAND and tokens[0].text.lower() == "explain":
        _check_query(_explained(statement[tokens[0].end + 1 :], dialect), dialect)
    else:
        _check_query(statement, dialect)
    return statement


def _refuse(reason: str) -> NoReturn:
    raise ConfigError(f"query refused: {reason}")


def _tokens(text: str, dialect: str) -> list[Token]:
    try:
        tokens = Dialect.get_or_raise(dialect).tokenize(text)
    except TokenError:
        _refuse("it holds an unterminated string, quoted name or comment")
    return tokens


def _explained(text: str, dialect: str) -> str:
    """The statement ``EXPLAIN [ANALYZE] [VERBOSE] [(option value, ...)]`` explains: options
    are plain words (they shape the plan's output, they run nothing)."""
    tokens = _tokens(text, dialect)
    _check_tokens(tokens)
    i = 0
    if tokens and tokens[0].token_type == TokenType.L_PAREN:
        i = 1
        while i < len(tokens) and tokens[i].token_type != TokenType.R_PAREN:
            token = tokens[i]
            if token.token_type != TokenType.COMMA and not _is_word(token):
                _refuse("EXPLAIN options must be plain words")
            i += 1
        i += 1
    while i < len(tokens) and tokens[i].text.lower() in _EXPLAIN_WORDS:
        i += 1
    if i >= len(tokens):
        _refuse("EXPLAIN of nothing")
    return text[tokens[i].start :]


def _is_word(token: Token) -> bool:
    return token.token_type not in _STRING_TOKENS and token.text.replace("_", "").isalnum()


def _check_query(text: str, dialect: str) -> None:
    tokens = _tokens(text, dialect)
    _check_tokens(tokens)
    _check_one_statement(tokens)
    statement = _parse(text, dialect)
    allowed = _QUERIES + (_DUCKDB_READS if dialect == "duckdb" else ())
    if not isinstance(statement, allowed):
        word = statement.name if isinstance(statement, exp.Command) else statement.key
        _refuse(f"{word.upper()} is not a query")
    for node in statement.walk():
        for refused, reason in _REFUSED_NODES:
            if isinstance(node, refused):
                _refuse(reason)
        if isinstance(node, exp.Table):
            _check_table_name(node)


def _check_tokens(tokens: list[Token]) -> None:
    """What the parse tree does not keep: comments, escapes, the names of calls as written."""
    for i, token in enumerate(tokens):
        after = tokens[i + 1 : i + 3]
        if any("/*" in c or "*/" in c for c in token.comments):
            _refuse("nested block comments are not accepted (databases disagree on them)")
        if token.token_type == TokenType.UNICODE_STRING or _unicode_escape(token, after):
            _refuse("U& Unicode escapes are not accepted")
        if after and after[0].token_type == TokenType.L_PAREN:
            _check_call(token)


def _check_one_statement(tokens: list[Token]) -> None:
    """Semicolons outside strings and comments separate statements: counted on the tokens,
    a text of thousands of statements is refused without parsing them all."""
    count, pending = 0, False
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            count, pending = count + pending, False
        else:
            pending = True
    count += pending
    if count != 1:
        _refuse(f"one statement only, found {count}")


def _unicode_escape(token: Token, after: list[Token]) -> bool:
    """``U&"..."`` / ``U&'...'`` (PostgreSQL spells any name with escapes), or ``UESCAPE``."""
    if token.token_type != TokenType.VAR:
        return False
    if token.text.upper() == "UESCAPE":
        return True
    return (
        token.text.upper() == "U"
        and len(after) == 2
        and after[0].token_type == TokenType.AMP
        and after[0].start == token.end + 1
        and after[1].token_type in (TokenType.IDENTIFIER, *_STRING_TOKENS)
        and after[1].start == after[0].end + 1
    )


def _check_call(name: Token) -> None:
    """``name (`` is a call (or a harmless type or column list); refuse the functions that
    reach outside the query. Names are compared folded, so quoting does not hide one."""
    if name.token_type in _STRING_TOKENS:
        return
    called = unicodedata.normalize("NFKC", name.text).lower()
    if called in _REFUSED_CALLS or called.startswith(_REFUSED_CALL_PREFIXES):
        _refuse(f"{called}() reaches files, the network, other sessions or server state")


def _check_table_name(table: exp.Table) -> None:
    """DuckDB reads a file or URL named as a table (``FROM 'x.csv'``): refuse such names
    (in every dialect: one rule, and a quoted table name holding a dot or slash is rare)."""
    for part in table.parts:
        if isinstance(part, exp.Identifier) and any(c in part.name for c in "/\\:."):
            _refuse(f"table name {part.name!r} looks like a file or URL")


def _parse(text: str, dialect: str) -> exp.Expr:
    try:
        with _quiet_sqlglot():
            parsed = sqlglot.parse(text, read=dialect)
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        where = f" (line {first.get('line')}, column {first.get('col')})" if first else ""
        _refuse(f"cannot parse it as {dialect} SQL: {first.get('description', exc)}{where}")
    except RecursionError:
        _refuse("it is nested too deeply to check")
    statements = [s for s in parsed if s is not None and not isinstance(s, exp.Semicolon)]
    if len(statements) != 1:
        _refuse(f"one statement only, found {len(statements)}")
    return statements[0]


@contextmanager
def _quiet_sqlglot() -> Iterator[None]:
    """sqlglot logs a warning when it keeps text it cannot read as a Command: the check refuses
    the Command, the warning must not reach the terminal as well."""
    logger = logging.getLogger("sqlglot")
    handler = logging.NullHandler()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def arrow(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> pa.Table:
    """Rows as an Arrow table with every column, in order, duplicate names included; a column
    Arrow cannot type (mixed or exotic values) is kept as text."""
    columns = [_column([row[i] for row in rows]) for i in range(len(names))]
    return pa.Table.from_arrays(columns, names=list(names))


def _column(values: list[Any]) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        return pa.array([None if v is None else str(v) for v in values], pa.string())


def failed(where: str, message: str) -> TerminalError:
    """A failed query as one line: the database's first line (its reason, not the echo of
    the statement that follows it)."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    return TerminalError(f"query failed on {where}: {lines[0] if lines else 'no reason given'}")


def timed_out(where: str, timeout_s: float | None) -> TerminalError:
    """A cancelled query as one line naming the setting that cancelled it."""
    return TerminalError(f"query cancelled on {where} after {timeout_s:g} s (FDP_QUERY_TIMEOUT_S)")
