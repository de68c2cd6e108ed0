"""The expectation suite: where it lives, how it loads, and what each rule means row by row.

The suite ships inside the package (``fdp/quality/stock_data_suite.json``, package data), so
an installed wheel finds it with ``importlib.resources``; ``config/expectations/`` in the
repository links to the same file. GX drops expectations it cannot build with only a log
line, so ``load_suite`` compares the built count with the file and fails loudly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import polars as pl

from fdp.errors import ConfigError
from fdp.records import TICKER_PATTERN

SUITE_FILE = "stock_data_suite.json"


def suite_parameters() -> dict[str, Any]:
    """Values for the suite's ``$PARAMETER`` placeholders (each rule defined once, in fdp)."""
    return {"ticker_pattern": TICKER_PATTERN}


@dataclass(frozen=True, slots=True)
class Rule:
    """One expectation of the suite, as fdp reads it."""

    name: str
    type: str
    kwargs: dict[str, Any]
    description: str

    @property
    def columns(self) -> tuple[str, ...]:
        kw = self.kwargs
        if "column" in kw:
            return (kw["column"],)
        if "column_A" in kw:
            return (kw["column_A"], kw["column_B"])
        if self.type == "expect_compound_columns_to_be_unique":
            return tuple(kw["column_list"])
        if "symbol_column" in kw:
            return (kw["symbol_column"], kw["date_column"])
        if "ingest_column" in kw:
            return (kw["date_column"], kw["ingest_column"])
        return ()

    @property
    def mostly(self) -> float | None:
        value = self.kwargs.get("mostly")
        return None if value is None else float(value)

    @property
    def row_level(self) -> bool:
        """True when the rule judges single rows (so failing rows can be rejected)."""
        return self.type in _ROW_MASKS

    def unexpected(self) -> pl.Expr:
        """True for the rows this rule finds unexpected, as GX counts them (nulls in the data
        are real nulls: NaN is validated as +inf, see ``fdp.quality.runner``)."""
        return _ROW_MASKS[self.type](self.kwargs)


def _between(kw: dict[str, Any]) -> pl.Expr:
    col = pl.col(kw["column"])
    ok = pl.lit(True)
    if kw.get("min_value") is not None:
        ok &= col > kw["min_value"] if kw.get("strict_min") else col >= kw["min_value"]
    if kw.get("max_value") is not None:
        ok &= col < kw["max_value"] if kw.get("strict_max") else col <= kw["max_value"]
    return col.is_not_null() & ~ok


def _greater(kw: dict[str, Any]) -> pl.Expr:
    if kw.get("ignore_row_if") != "either_value_is_missing":
        raise ConfigError(f"{kw}: fdp supports ignore_row_if='either_value_is_missing' only")
    a, b = pl.col(kw["column_A"]), pl.col(kw["column_B"])
    ok = a >= b if kw.get("or_equal") else a > b
    return a.is_not_null() & b.is_not_null() & ~ok


def _regex(kw: dict[str, Any]) -> pl.Expr:
    regex = kw["regex"]
    if isinstance(regex, dict):
        regex = suite_parameters()[regex["$PARAMETER"]]
    col = pl.col(kw["column"])
    return col.is_not_null() & ~col.str.contains(regex)


def bar_date(column: str) -> pl.Expr:
    """The vendor's date string of ``column`` as a date; null when it is not ``YYYY-MM-DD``
    (the date rule reports those, the rules that compare dates skip them)."""
    return pl.col(column).cast(pl.String).str.to_date("%Y-%m-%d", strict=False)


def after_ingest(date: str, ingest: str) -> pl.Expr:
    """True for a bar dated after the day its batch was ingested: the one definition of the
    future-bar rule (``fdp.quality.future_bars`` counts it for GX)."""
    return (bar_date(date) > pl.col(ingest).cast(pl.Date)).fill_null(False)


_ROW_MASKS: dict[str, Callable[[dict[str, Any]], pl.Expr]] = {
    "expect_column_values_to_not_be_null": lambda kw: pl.col(kw["column"]).is_null(),
    "expect_column_values_to_be_between": _between,
    "expect_column_pair_values_a_to_be_greater_than_b": _greater,
    "expect_column_values_to_match_regex": _regex,
    "expect_compound_columns_to_be_unique": lambda kw: pl.struct(kw["column_list"]).is_duplicated(),
    "expect_bars_to_not_be_after_ingest_date": lambda kw: after_ingest(
        kw["date_column"], kw["ingest_column"]
    ),
}
_TABLE_LEVEL = {
    "expect_table_columns_to_match_ordered_list",
    "expect_table_row_count_to_be_between",
    "expect_symbols_to_have_every_session",
}


def default_suite_path() -> Path:
    """The suite shipped with the package."""
    return Path(str(files("fdp.quality") / SUITE_FILE))


def read_rules(path: Path | None = None) -> tuple[str, list[Rule], dict[str, Any]]:
    """The suite's name, its rules and its raw document; every rule must be known to fdp."""
    path = path or default_suite_path()
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read expectation suite {path}: {exc}") from None
    rules = []
    for i, exp in enumerate(doc.get("expectations", [])):
        kind, name = exp.get("type"), (exp.get("meta") or {}).get("rule")
        if kind not in _ROW_MASKS and kind not in _TABLE_LEVEL:
            raise ConfigError(f"{path}: expectation {i} has type {kind!r}, unknown to fdp")
        if not name:
            raise ConfigError(f"{path}: expectation {i} ({kind}) has no meta.rule name")
        rule = Rule(name, kind, exp.get("kwargs", {}), exp["meta"].get("description", name))
        try:
            if rule.row_level:
                rule.unexpected()
        except KeyError as exc:
            raise ConfigError(f"{path}: rule {name} ({kind}) lacks argument {exc}") from None
        rules.append(rule)
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: rule names repeat: {sorted(names)}")
    return str(doc.get("name", path.stem)), rules, doc


@cache
def load_suite(path: Path | None = None) -> Any:
    """The GX ``ExpectationSuite`` of ``path`` (default: the packaged suite).

    Raises ``ConfigError`` when GX built fewer expectations than the file holds, naming the
    ones it dropped.
    """
    import great_expectations as gx

    from fdp.quality import completeness, future_bars  # noqa: F401  (register fdp's rules)

    name, rules, doc = read_rules(path)
    try:
        suite = gx.ExpectationSuite(name=name, expectations=doc["expectations"])
    except ValueError as exc:
        raise ConfigError(f"{path or default_suite_path()}: invalid expectation: {exc}") from None
    built = {(e.meta or {}).get("rule") for e in suite.expectations}
    dropped = [f"{r.name} ({r.type})" for r in rules if r.name not in built]
    if dropped or len(suite.expectations) != len(rules):
        raise ConfigError(
            f"{path or default_suite_path()}: GX built {len(suite.expectations)} of"
            f" {len(rules)} expectations; dropped: {', '.join(dropped)}"
        )
    return suite
