"""``fdp query`` is read-only on every warehouse: attacks through the real command change nothing.

Each write attempt runs through ``fdp query`` (click's runner on ``fdp.cli.main``) against a
real DuckDB file and a real PostgreSQL schema holding every table, migrations included; a
fingerprint of every table's rows, the schema, the large objects and the files an attack could
write is taken before and after. Tests named ``lower_layer`` call ``Warehouse.query`` (or
DuckDB's read-only connection) directly, past the sqlglot check, to document which wall stops
what.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import duckdb
import polars as pl
import pytest
from click.testing import CliRunner, Result
from wh_helpers import make_rows

from fdp.cli import main
from fdp.config import Settings
from fdp.errors import ConfigError, FdpError, TerminalError
from fdp.records import EnrichedStockRecord, Frame
from fdp.warehouse import (
    PipelineRun,
    SymbolInfo,
    connect,
    load_rows,
    migrate,
    record_pipeline_run,
    upsert_symbols,
)
from fdp.warehouse.duck import DuckDBWarehouse, path_of
from fdp.warehouse.query import MAX_CHARS, check, run

DAYS = [dt.date(2024, 3, 1) + dt.timedelta(days=i) for i in range(12)]
SYMBOLS = ["AAA", "BBB"]
MARKUP_NAME = "[red]x[/red] [/bold] [link=http://evil]y"
ESCAPE_NAME = "\x1b[31mred\x1b[0m"


@dataclass(frozen=True)
class Target:
    """A warehouse under attack: its URL, a directory an attack could write into, the large
    object an attack could export (PostgreSQL), and DuckDB's file and catalog name."""

    url: str
    kind: str
    out: Path
    lo: int

    @property
    def db_file(self) -> Path:
        return path_of(self.url) if self.kind == "duckdb" else self.out / "none.duckdb"

    def fill(self, sql: str) -> str:
        return (
            sql.replace("@OUT@", str(self.out))
            .replace("@DB@", str(self.db_file))
            .replace("@CATALOG@", self.db_file.stem)
            .replace("@LO@", str(self.lo))
        )


@contextmanager
def _writable_dir() -> Iterator[Path]:
    """A directory the PostgreSQL server may write into (pytest's tmp_path is private to this
    user), so an attack that writes a file would succeed there and be seen."""
    path = Path(tempfile.gettempdir()) / f"fdp-query-{uuid.uuid4().hex[:10]}"
    path.mkdir()
    path.chmod(0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _fill_warehouse(url: str, data_dir: Path) -> None:
    """Migrations, facts, symbols (one named with markup, one with a terminal escape) and a
    pipeline run: every table holds rows."""
    warehouse = connect(url, Settings(data_dir=str(data_dir), warehouse_url=url))
    migrate(warehouse)
    upsert_symbols(
        warehouse, [SymbolInfo("AAA", name=MARKUP_NAME), SymbolInfo("BBB", name=ESCAPE_NAME)]
    )
    load_rows(warehouse, Frame(EnrichedStockRecord, make_rows(SYMBOLS, DAYS)), "fixture")
    started = dt.datetime(2024, 3, 12, 22, tzinfo=dt.UTC)
    record_pipeline_run(warehouse, PipelineRun("load", DAYS[-1], "r1", "success", started))


@pytest.fixture(scope="module")
def pg_target(pg_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """A filled PostgreSQL schema (selected through ``search_path``) and a large object."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_database, autocommit=True) as con:
        con.execute(f"CREATE SCHEMA {schema}")
    url = f"{pg_database}?options={quote(f'-csearch_path={schema}')}"
    _fill_warehouse(url, tmp_path_factory.mktemp("data"))
    with psycopg.connect(url, autocommit=True) as con:
        lo = int(con.execute("SELECT lo_from_bytea(0, 'large object secret')").fetchone()[0])
    with _writable_dir() as out:
        yield Target(url, "postgres", out, lo)
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("SELECT lo_unlink(%s)", [lo])


@pytest.fixture(
    scope="module", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    """Each warehouse in turn, filled once for the module: an attack that changed it fails
    its own test (the fingerprints differ)."""
    if request.param == "postgres":
        yield request.getfixturevalue("pg_target")
        return
    url = f"duckdb:///{tmp_path_factory.mktemp('wh') / 'wh.duckdb'}"
    _fill_warehouse(url, tmp_path_factory.mktemp("data"))
    with _writable_dir() as out:
        yield Target(url, "duckdb", out, 0)


def _digest(rows: list[tuple[Any, ...]]) -> str:
    return hashlib.sha256(repr(sorted(map(repr, rows))).encode()).hexdigest()[:16]


def _duckdb_state(path: Path) -> dict[str, Any]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        objects = con.execute(
            "SELECT 'table', schema_name, table_name, sql FROM duckdb_tables()"
            " UNION ALL SELECT 'view', schema_name, view_name, sql FROM duckdb_views()"
            " WHERE NOT internal"
            " UNION ALL SELECT 'sequence', schema_name, sequence_name, sql FROM duckdb_sequences()"
            " UNION ALL SELECT 'index', schema_name, index_name, sql FROM duckdb_indexes()"
            " ORDER BY ALL"
        ).fetchall()
        rows = {
            name: _digest(con.execute(f'SELECT * FROM "{schema}"."{name}"').fetchall())
            for kind, schema, name, _ in objects
            if kind == "table"
        }
    finally:
        con.close()
    return {"objects": objects, "rows": rows}


def _postgres_state(url: str) -> dict[str, Any]:
    import psycopg
    from psycopg import sql

    with psycopg.connect(url) as con:
        schema = con.execute("SELECT current_schema()").fetchone()[0]
        objects = con.execute(
            "SELECT n.nspname, c.relname, c.relkind FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')"
            " AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'"
            " ORDER BY 1, 2"
        ).fetchall()
        columns = con.execute(
            "SELECT table_name, column_name, data_type, is_nullable, column_default"
            " FROM information_schema.columns WHERE table_schema = %s"
            " ORDER BY table_name, ordinal_position",
            [schema],
        ).fetchall()
        comments = con.execute(
            "SELECT c.relname, d.objsubid, d.description FROM pg_description d"
            " JOIN pg_class c ON c.oid = d.objoid JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s ORDER BY 1, 2",
            [schema],
        ).fetchall()
        large_objects = con.execute(
            "SELECT oid, md5(lo_get(oid)) FROM pg_largeobject_metadata ORDER BY oid"
        ).fetchall()
        tables = [
            r[0]
            for r in con.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", [schema]
            )
        ]
        rows = {
            t: _digest(
                con.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(t))).fetchall()
            )
            for t in tables
        }
    return {
        "objects": objects,
        "columns": columns,
        "comments": comments,
        "large_objects": large_objects,
        "rows": rows,
    }


def fingerprint(target: Target) -> dict[str, Any]:
    """Everything an attack could change: each table's rows (migrations included), the schema,
    large objects, and the files in the warehouse's and the attack's directories."""
    state = (
        _duckdb_state(target.db_file) if target.kind == "duckdb" else _postgres_state(target.url)
    )
    written = [str(p.relative_to(target.out)) for p in sorted(target.out.rglob("*"))]
    beside = (
        sorted(p.name for p in target.db_file.parent.iterdir()) if target.kind == "duckdb" else []
    )
    return {**state, "written": written, "beside_db": beside}


def fdp_query(target: Target, sql: str, *options: str) -> Result:
    """``fdp query --warehouse URL [options] -- SQL`` through the real command line."""
    return CliRunner().invoke(main, ["query", "--warehouse", target.url, *options, "--", sql])


def one_line(text: str) -> bool:
    return len(text.strip().splitlines()) == 1 and "Traceback" not in text


# ---------------------------------------------------------------- write attempts

REFUSED = [
    ("drop", "drop table dim_symbol"),
    ("select_then_drop", "select 1; drop table dim_symbol"),
    ("commit_then_drop", "select 1; commit; drop table dim_symbol"),
    ("cte_delete", "with d as (delete from dim_symbol returning *) select * from d"),
    (
        "cte_insert",
        "with i as (insert into dim_symbol (symbol) values ('ZZZ') returning *) select * from i",
    ),
    (
        "cte_update",
        "with u as (update schema_migrations set name = 'x' returning *) select count(*) from u",
    ),
    (
        "cte_delete_in_subquery",
        "select * from (with d as (delete from fact_stock_prices returning 1) select * from d) s",
    ),
    (
        "cte_delete_in_scalar_subquery",
        "select (with d as (delete from dim_symbol returning 1) select count(*) from d)",
    ),
    ("select_into", "select * into stolen from dim_symbol"),
    ("create_table_as", "create table stolen as select * from dim_symbol"),
    ("create_temp_table", "create temp table t as select 1"),
    ("insert", "insert into dim_symbol (symbol) values ('ZZZ')"),
    ("update_migrations", "update schema_migrations set version = version + 10"),
    ("delete_migrations", "delete from schema_migrations"),
    ("truncate", "truncate fact_stock_prices"),
    ("alter", "alter table dim_symbol add column pwned int"),
    ("copy_table_to", "copy dim_symbol to '@OUT@/dim.csv'"),
    ("copy_query_to", "copy (select * from fact_stock_prices) to '@OUT@/fact.csv'"),
    ("copy_from", "copy dim_symbol from '/etc/hostname'"),
    ("copy_to_program", "copy (select 1) to program 'touch @OUT@/pwned'"),
    ("attach_other_read_write", "attach '@OUT@/other.duckdb' as other (read_write)"),
    (
        "detach_reattach_read_write_drop",
        "attach ':memory:' as m (read_write); use m; detach @CATALOG@;"
        " attach '@DB@' as w (read_write); drop table w.dim_symbol",
    ),
    ("attach_self_then_drop", "attach '@DB@' as w (read_write); drop table w.dim_symbol"),
    ("detach", "detach @CATALOG@"),
    ("install", "install httpfs"),
    ("load", "load httpfs"),
    ("set", "set threads = 1"),
    ("set_search_path", "set search_path = public"),
    ("pragma_profiling", "pragma enable_profiling"),
    ("pragma_checkpoint", "pragma force_checkpoint"),
    ("read_text", "select * from read_text('/etc/passwd')"),
    ("read_csv_quoted_name", "select * from \"read_csv\"('/etc/passwd')"),
    ("read_blob_qualified", "select * from main.read_blob('/etc/passwd')"),
    ("file_as_table", "select * from '/etc/passwd.csv'"),
    ("glob", "select * from glob('/etc/*')"),
    ("getenv", "select getenv('HOME')"),
    ("sql_in_a_string_duckdb", "select * from query('select 1')"),
    ("pg_read_file", "select pg_read_file('/etc/passwd')"),
    ("pg_read_file_qualified", "select pg_catalog.pg_read_file('/etc/passwd')"),
    ("pg_read_file_quoted", "select \"pg_read_file\"('/etc/passwd')"),
    ("pg_read_file_upper", "SELECT PG_READ_FILE('/etc/passwd')"),
    ("pg_read_file_comment_before_paren", "select pg_read_file /* x */ ('/etc/passwd')"),
    ("pg_read_binary_file", "select pg_read_binary_file('/etc/passwd')"),
    ("pg_ls_dir", "select pg_ls_dir('/')"),
    ("lo_export", "select lo_export(@LO@, '@OUT@/lo.bin')"),
    ("lo_import", "select lo_import('/etc/hostname')"),
    ("lo_unlink", "select lo_unlink(@LO@)"),
    ("dblink", "select dblink_exec('dbname=postgres', 'drop table dim_symbol')"),
    ("sql_in_a_string_postgres", "select query_to_xml('drop table dim_symbol', true, true, '')"),
    ("set_config", "select set_config('default_transaction_read_only', 'off', false)"),
    ("nextval", "select nextval('seq')"),
    ("advisory_lock", "select pg_advisory_lock(1)"),
    ("terminate_backend", "select pg_terminate_backend(pg_backend_pid())"),
    ("for_update", "select * from dim_symbol for update"),
    ("for_share_in_subquery", "select * from (select * from dim_symbol for share) s"),
    ("call", "call checkpoint()"),
    ("checkpoint_function", "select * from checkpoint()"),
    ("vacuum", "vacuum"),
    ("vacuum_analyze", "vacuum analyze dim_symbol"),
    ("analyze", "analyze dim_symbol"),
    ("checkpoint", "checkpoint"),
    ("begin", "begin"),
    ("commit", "commit"),
    ("explain_analyze_delete", "explain analyze delete from dim_symbol"),
    (
        "explain_analyze_cte_delete",
        "explain analyze with d as (delete from dim_symbol returning *) select * from d",
    ),
    ("explain_options_then_delete", "explain (analyze, format json) delete from dim_symbol"),
    ("explain_then_drop", "explain select 1; drop table dim_symbol"),
    ("do_block", "do $$ begin drop table dim_symbol; end $$"),
    ("prepare", "prepare p as delete from dim_symbol"),
    ("execute", "execute p"),
    ("lock", "lock table dim_symbol"),
    ("notify", "notify ch"),
    ("comment_on", "comment on table dim_symbol is 'pwned'"),
    ("grant", "grant all on dim_symbol to public"),
    ("export_database", "export database '@OUT@/export'"),
    ("line_comment_then_drop", "select 1 -- ;\ndrop table dim_symbol"),
    ("nested_comment_hides_drop", "select 1 /* /* */ ; drop table dim_symbol; /* */ */"),
    ("unterminated_nested_comment", "select 1 /* /* */ ; drop table dim_symbol; /* */"),
    ("backslash_is_not_an_escape", "select 'a\\'; drop table dim_symbol; --'"),
    ("dollar_quote_closed_early", "select $a$ $$ ; $a$; drop table dim_symbol"),
    ("unicode_escaped_name", "select U&\"pg\\005fread\\005ffile\"('/etc/passwd')"),
    ("uescape_name", "select U&\"pg!005fread!005ffile\" UESCAPE '!' ('/etc/passwd')"),
    ("homoglyph_keyword", "ѕelect 1; drop table dim_symbol"),
    ("fullwidth_semicolon", "select 1； drop table dim_symbol"),
    ("greek_question_mark", "select 1\u037e drop table dim_symbol"),
    ("nul_character", "select 1\x00; drop table dim_symbol"),
    ("very_long", "select 1" + " + 1" * (MAX_CHARS // 4)),
    ("deeply_nested", "select " + "(" * 3_000 + "1" + ")" * 3_000),
    ("thousands_of_statements", "select 1;" * 5_000 + " drop table dim_symbol"),
    ("empty", "  ;  "),
    ("only_a_comment", "/* drop table dim_symbol */"),
]

REACH_THE_DATABASE_AND_FAIL = [
    ("homoglyph_function", "select pg_rеad_file('/etc/passwd')"),  # a Cyrillic е
    ("quote_in_name", 'select "a"";drop table dim_symbol;--" from dim_symbol'),
]

HARMLESS = [
    ("semicolon_in_block_comment", "select 1 /* ; drop table dim_symbol */"),
    ("drop_in_a_string", "select '; drop table dim_symbol; --'"),
    ("drop_in_a_dollar_string", "select $$; drop table dim_symbol; $$"),
    ("trailing_semicolons", "select count(*) from dim_symbol;;"),
]


@pytest.mark.parametrize(("name", "sql"), REFUSED, ids=[c[0] for c in REFUSED])
def test_write_attempt_is_refused_and_changes_nothing(target: Target, name: str, sql: str) -> None:
    before = fingerprint(target)
    result = fdp_query(target, target.fill(sql))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: query refused"), result.stderr
    assert one_line(result.stderr), result.stderr
    assert result.stdout == ""
    assert fingerprint(target) == before


@pytest.mark.parametrize(
    ("name", "sql"), REACH_THE_DATABASE_AND_FAIL, ids=[c[0] for c in REACH_THE_DATABASE_AND_FAIL]
)
def test_lookalike_reaches_the_database_fails_and_changes_nothing(
    target: Target, name: str, sql: str
) -> None:
    before = fingerprint(target)
    result = fdp_query(target, target.fill(sql))
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("failed: query failed on"), result.stderr
    assert one_line(result.stderr), result.stderr
    assert fingerprint(target) == before


@pytest.mark.parametrize(("name", "sql"), HARMLESS, ids=[c[0] for c in HARMLESS])
def test_text_that_looks_like_a_write_is_run_as_the_read_it_is(
    target: Target, name: str, sql: str
) -> None:
    before = fingerprint(target)
    result = fdp_query(target, sql)
    assert result.exit_code == 0, result.output
    assert fingerprint(target) == before


CHECKED = [
    pytest.param(dialect, sql, id=f"{dialect}-{name}")
    for dialect in ("duckdb", "postgres", "redshift")
    for name, sql in REFUSED
    # In Redshift a backslash escapes the quote: one string there (the test below).
    if (dialect, name) != ("redshift", "backslash_is_not_an_escape")
]


@pytest.mark.parametrize(("dialect", "sql"), CHECKED)
def test_every_write_attempt_is_refused_in_every_dialect_before_any_connection(
    dialect: str, sql: str, tmp_path: Path
) -> None:
    """The same battery through ``check`` alone: the wall Redshift relies on (no Redshift
    here), and the one PostgreSQL and DuckDB meet first."""
    dummy = Target(f"duckdb:///{tmp_path / 'wh.duckdb'}", "duckdb", tmp_path, 12345)
    with pytest.raises(ConfigError, match=r"^query refused: "):
        check(dummy.fill(sql), dialect)


def test_redshift_reads_a_backslash_quote_as_part_of_the_string() -> None:
    """Redshift string literals take backslash escapes (PostgreSQL's and DuckDB's do not),
    so this is one SELECT of one string there; its READ ONLY transaction would still refuse
    the DROP if the server read it otherwise."""
    sql = "select 'a\\'; drop table dim_symbol; --'"
    assert check(sql, "redshift") == sql
    with pytest.raises(ConfigError, match="one statement only, found 2"):
        check(sql, "postgres")


def test_redshift_refuses_before_reaching_the_data_api(settings: Settings) -> None:
    """``run`` checks first: a refused statement never builds a Data API client (here it
    could not: no region, no credentials, no cluster)."""
    url = "redshift://u@cluster/dev?iam_role=arn:aws:iam::123456789012:role/r&staging=s3://b/p"
    warehouse = connect(url, settings)
    with pytest.raises(ConfigError, match="one statement only"):
        run(warehouse, "select 1; drop table dim_symbol", 5, 1.0)
    with pytest.raises(ConfigError, match="it writes data"):
        run(warehouse, "with d as (delete from t returning *) select * from d", 5, 1.0)


# ---------------------------------------------------------------- reads that must keep working

GOOD = [
    "select 1",
    "select * from fact_stock_prices f join dim_symbol d using (symbol) where f.volume > 0",
    "select symbol, rank() over (partition by symbol order by close desc nulls last) from"
    " fact_stock_prices",
    "with recursive r(n) as (select 1 union all select n + 1 from r where n < 5) select * from r",
    "select symbol from dim_symbol union select 'X' except select 'Y' intersect select 'Z'",
    "values (1, 'a'), (2, 'b')",
    "explain select * from fact_stock_prices where symbol = 'AAA'",
    "explain analyze select count(*) from fact_stock_prices",
    "explain (analyze, format json) select 1",
    "select '[red]x[/red]', '/* not a comment */', '--', ';', $$;$$",
    "select current_date - interval '1 day' as yesterday",
    "select * from fact_stock_prices order by trade_date desc limit 3 offset 1",
    "select symbol, count(*) filter (where close > 1) from fact_stock_prices group by 1",
]


@pytest.mark.parametrize("dialect", ["duckdb", "postgres", "redshift"])
def test_ordinary_reads_pass_the_check_unchanged(dialect: str) -> None:
    for sql in GOOD:
        if dialect == "redshift" and sql.startswith(("explain (", "values")):
            continue  # Redshift has no EXPLAIN option list and no VALUES statement
        assert check(f"  {sql} ;\n", dialect) == sql


def test_duckdb_catalog_reads_pass_the_check() -> None:
    for sql in ("describe fact_stock_prices", "show tables", "summarize dim_symbol"):
        assert check(sql, "duckdb") == sql
        with pytest.raises(ConfigError, match="is not a query"):
            check(sql, "postgres")


def _frame(target: Target, sql: str) -> pl.DataFrame:
    rows = run(connect(target.url), sql, 10_000, 60.0)
    assert not rows.more
    return pl.from_arrow(rows.table)


def test_joins_windows_and_recursive_ctes_give_the_reference_answers(target: Target) -> None:
    facts = make_rows(SYMBOLS, DAYS).sort("symbol", "trade_date")
    want_join = (
        facts.join(
            pl.DataFrame({"symbol": SYMBOLS, "name": [MARKUP_NAME, ESCAPE_NAME]}), on="symbol"
        )
        .group_by("name")
        .agg(pl.len().alias("n"), pl.col("volume").sum().alias("v"))
        .sort("name")
    )
    got_join = _frame(
        target,
        "select d.name, count(*) as n, sum(f.volume) as v from fact_stock_prices f"
        " join dim_symbol d on d.symbol = f.symbol group by d.name order by d.name",
    )
    assert got_join["name"].to_list() == want_join["name"].to_list()
    assert [int(x) for x in got_join["n"]] == want_join["n"].to_list()
    assert [int(x) for x in got_join["v"]] == want_join["v"].to_list()

    want_window = facts.with_columns(
        pl.col("volume").cast(pl.Float64).rolling_mean(3, min_samples=1).over("symbol").alias("m")
    )["m"].to_list()
    got_window = _frame(
        target,
        "select avg(volume) over (partition by symbol order by trade_date"
        " rows between 2 preceding and current row) as m"
        " from fact_stock_prices order by symbol, trade_date",
    )["m"].to_list()
    assert [float(m) for m in got_window] == pytest.approx(want_window, rel=1e-12)

    got_cte = _frame(
        target,
        "with recursive r(n) as (select 1 union all select n + 1 from r where n < 5),"
        " s as (select symbol from dim_symbol union all values ('ZZZ'))"
        " select (select sum(n) from r) as total, symbol from s order by symbol",
    )
    assert [int(x) for x in got_cte["total"]] == [15, 15, 15]
    assert got_cte["symbol"].to_list() == ["AAA", "BBB", "ZZZ"]


def test_explain_of_a_select_shows_its_plan(target: Target) -> None:
    result = fdp_query(target, "explain select * from fact_stock_prices where symbol = 'AAA'")
    assert result.exit_code == 0, result.output
    plan = run(connect(target.url), "explain select * from fact_stock_prices", 100, 60.0).table
    text = " ".join(str(v) for column in plan.columns for v in column.to_pylist())
    assert "fact_stock_prices" in text.lower()


def test_describe_is_a_read_on_duckdb_only(target: Target) -> None:
    """DuckDB runs DESCRIBE as a SELECT of the catalog; PostgreSQL has no DESCRIBE."""
    result = fdp_query(target, "describe dim_symbol")
    if target.kind == "duckdb":
        assert result.exit_code == 0, result.output
        assert "updated_at" in result.stdout
    else:
        assert result.exit_code == 2, result.output
        assert "DESCRIBE is not a query" in result.stderr


def test_cli_prints_the_rows_and_says_whether_there_are_more(target: Target) -> None:
    few = fdp_query(
        target, "select symbol from fact_stock_prices order by symbol, trade_date", "--limit", "5"
    )
    assert few.exit_code == 0, few.output
    assert few.stdout.count("AAA") == 5
    assert "first 5 rows shown; the result has more" in few.stdout
    every = fdp_query(target, "select symbol from fact_stock_prices", "--limit", "1000")
    assert every.exit_code == 0, every.output
    assert f"{len(SYMBOLS) * len(DAYS)} rows" in every.stdout
    assert "more" not in every.stdout


def test_a_negative_limit_is_a_usage_error(target: Target) -> None:
    result = fdp_query(target, "select 1", "--limit", "-1")
    assert result.exit_code == 2, result.output
    assert "--limit must be 0 or more" in result.stderr


def test_duplicate_column_names_are_all_shown_in_order(target: Target) -> None:
    result = fdp_query(target, "select 1 as a, 2 as a, 3 as b, 4 as a")
    assert result.exit_code == 0, result.output
    header = next(line for line in result.stdout.splitlines() if " a " in line)
    assert [cell.strip() for cell in header.strip("┃ \n").split("┃")] == ["a", "a", "b", "a"]
    row = next(line for line in result.stdout.splitlines() if " 1 " in line)
    assert [cell.strip() for cell in row.strip("│ \n").split("│")] == ["1", "2", "3", "4"]
    empty = run(connect(target.url), "select 1 as a, 2 as a where 1 = 0", 5, 60.0)
    assert empty.table.column_names == ["a", "a"]
    assert empty.table.num_rows == 0


def test_markup_and_terminal_escapes_in_values_and_names_print_literally(target: Target) -> None:
    result = fdp_query(target, 'select name as "[/bold]" from dim_symbol order by symbol')
    assert result.exit_code == 0, result.output
    assert "[/bold]" in result.stdout
    assert MARKUP_NAME in result.stdout
    assert "\\x1b[31mred\\x1b[0m" in result.stdout
    assert "\x1b" not in result.stdout


def test_a_failing_query_exits_1_with_one_line_naming_the_reason(target: Target) -> None:
    for sql, reason in [
        ("select * from no_such_table", r"no_such_table"),
        ('select "[/bold]" from dim_symbol', r"\[/bold\]"),
        ("select cast('x' as integer)", r"invalid input syntax|Could not convert"),
    ]:
        result = fdp_query(target, sql)
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith("failed: query failed on"), result.stderr
        assert re.search(reason, result.stderr), result.stderr
        assert one_line(result.stderr), result.stderr
        assert result.stdout == ""


def test_a_refused_query_exits_2_with_one_line_printed_literally(target: Target) -> None:
    result = fdp_query(target, 'select * from "[red]x[/red].csv"')
    assert result.exit_code == 2, result.output
    assert "table name '[red]x[/red].csv' looks like a file or URL" in result.stderr
    assert one_line(result.stderr), result.stderr


def test_a_query_past_its_timeout_is_cancelled(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FDP_QUERY_TIMEOUT_S", "0.5")
    slow = (
        "select pg_sleep(30)"
        if target.kind == "postgres"
        else "select sum(a.range * b.range) from range(200000) a, range(200000) b"
    )
    result = fdp_query(target, slow)
    assert result.exit_code == 1, result.output
    assert "query cancelled on" in result.stderr
    assert one_line(result.stderr), result.stderr


def test_queries_at_once_in_one_process_all_answer(target: Target) -> None:
    """DuckDB keeps one instance per file and process, whose configuration a query locks:
    queries at once take turns instead of failing on each other's settings."""
    warehouse = connect(target.url)
    sql = "select count(*) as n from fact_stock_prices"
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: run(warehouse, sql, 5, 60.0), range(8)))
    assert [int(a.table.column("n")[0].as_py()) for a in answers] == [len(SYMBOLS) * len(DAYS)] * 8


def _trap(target: Target) -> str:
    """A query that fails only if its row 1,000,000 (of 2,000,000) is computed. Rows carry
    100 bytes of padding, so the rows before the trap (over 100 MB) are more than socket
    buffers hold: a server that keeps producing while the client stops reading blocks long
    before the trap."""
    if target.kind == "postgres":
        return (
            "select case when g < 1000000 then g else 1 / (g - g) end as v, repeat('x', 100)"
            " from generate_series(1, 2000000) g"
        )
    return (
        "select case when i < 1000000 then i else error('fetched too far') end as v,"
        " repeat('x', 100) from range(2000000) t(i)"
    )


def test_a_large_result_is_not_fetched_whole(target: Target) -> None:
    warehouse = connect(target.url)
    with pytest.raises(TerminalError, match=r"fetched too far|division by zero"):
        warehouse.query(_trap(target))  # the trap does fire when every row is read
    result = fdp_query(target, _trap(target), "--limit", "5")
    assert result.exit_code == 0, result.output
    assert "first 5 rows shown; the result has more" in result.stdout


# ---------------------------------------------------------------- which wall stops what

ATTACH_SERIES = [
    "ATTACH ':memory:' AS m (READ_WRITE)",
    "USE m",
    "DETACH @CATALOG@",
    "ATTACH '@DB@' AS w (READ_WRITE)",
    "DROP TABLE w.dim_symbol",
]


@pytest.fixture
def duck(tmp_path: Path, settings: Settings) -> Target:
    """A migrated DuckDB warehouse of its own (one test here drops a table)."""
    url = f"duckdb:///{tmp_path / 'wh' / 'wh.duckdb'}"
    migrate(connect(url, settings))
    (tmp_path / "out").mkdir()
    return Target(url, "duckdb", tmp_path / "out", 0)


def test_lower_layer_duckdb_settings_alone_let_a_reattach_drop_a_table(duck: Target) -> None:
    """Read-only file, external access off, configuration locked: DuckDB still lets a series
    of statements re-attach its own file read-write. This is why both checks count
    statements."""
    warehouse = DuckDBWarehouse(duck.url, connect(duck.url).policy)
    con = warehouse.read_only_connection()
    try:
        for statement in ATTACH_SERIES:
            con.execute(duck.fill(statement))
    finally:
        con.close()
    assert "dim_symbol" not in fingerprint(duck)["rows"]


def test_lower_layer_duckdb_own_parser_refuses_the_series(duck: Target) -> None:
    """Past sqlglot, DuckDB's own parser finds five statements and the runner refuses them."""
    before = fingerprint(duck)
    with pytest.raises(ConfigError, match="refused by DuckDB: one SELECT or EXPLAIN only"):
        connect(duck.url).query(duck.fill("; ".join(ATTACH_SERIES)))
    assert fingerprint(duck) == before
    assert "dim_symbol" in before["rows"]


@pytest.mark.parametrize(
    "statement",
    [
        "ATTACH '@OUT@/other.duckdb' AS other (READ_WRITE)",
        "COPY (SELECT 1) TO '@OUT@/one.csv'",
        "SELECT * FROM read_text('/etc/hostname')",
        "SELECT * FROM '/etc/passwd.csv'",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET threads = 1",
        "SET enable_external_access = true",
        "SET lock_configuration = false",
        "CREATE TABLE pwned AS SELECT 1",
        "EXPORT DATABASE '@OUT@/export'",
    ],
)
def test_lower_layer_duckdb_settings_stop_single_statements(duck: Target, statement: str) -> None:
    """Without any statement check, the connection's settings refuse each of these."""
    before = fingerprint(duck)
    con = DuckDBWarehouse(duck.url, connect(duck.url).policy).read_only_connection()
    try:
        with pytest.raises(duckdb.Error):
            con.execute(duck.fill(statement))
    finally:
        con.close()
    assert fingerprint(duck) == before


@pytest.mark.postgres
def test_lower_layer_postgres_refuses_statements_writes_and_server_files(pg_target: Target) -> None:
    """Past sqlglot: the server refuses a second statement (prepared statement), a statement
    without result columns before it runs (described), writes (READ ONLY transaction, rolled
    back) and, this connection being a superuser's, server files and programs (the statement
    runs as pg_read_all_data)."""
    before = fingerprint(pg_target)
    warehouse = connect(pg_target.url)
    for sql, reason in [
        ("select 1; commit; drop table dim_symbol", "multiple commands"),
        ("drop table dim_symbol", "returns no rows"),
        ("copy dim_symbol to '@OUT@/dim.csv'", "returns no rows"),
        ("copy (select 1) to program 'touch @OUT@/pwned'", "returns no rows"),
        ("select * into stolen from dim_symbol", "returns no rows"),
        ("delete from dim_symbol returning *", "read-only transaction"),
        ("with d as (delete from schema_migrations returning *) select * from d", "read-only"),
        ("select * from dim_symbol for update", "read-only transaction"),
        ("select set_config('transaction_read_only', 'off', true)", "read-write mode"),
        ("select pg_read_file('/etc/hostname')", "permission denied"),
        ("select lo_export(@LO@, '@OUT@/lo.bin')", "permission denied"),
        ("select set_config('log_statement', 'all', true)", "permission denied"),
    ]:
        with pytest.raises(FdpError, match=reason):
            warehouse.query(pg_target.fill(sql))
    assert fingerprint(pg_target) == before


@pytest.mark.postgres
def test_lower_layer_postgres_read_only_transaction_alone_lets_a_superuser_write_a_file(
    pg_target: Target,
) -> None:
    """Why the runner drops to pg_read_all_data, and why the check refuses lo_export: a bare
    READ ONLY transaction of a superuser still writes server files."""
    import psycopg

    exported = pg_target.out / "exported.bin"
    sql = f"select lo_export({pg_target.lo}, '{exported}')"
    with pytest.raises(ConfigError, match=r"lo_export\(\) reaches files"):
        check(sql, "postgres")
    with pytest.raises(TerminalError, match="permission denied for function lo_export"):
        connect(pg_target.url).query(sql)
    assert not exported.exists()
    try:
        with psycopg.connect(pg_target.url) as con:
            con.read_only = True
            with con.transaction(force_rollback=True):
                con.execute(sql)
        assert exported.read_bytes() == b"large object secret"
    finally:
        exported.unlink(missing_ok=True)
