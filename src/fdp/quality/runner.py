"""Run the suite on a batch with a real GX context, on the engine in use, then decide once.

GX decides pass/fail. fdp computes each row-level rule's mask once in Polars (from the same
suite file) to know *which* rows failed, and checks that its count equals GX's, so the
rejected rows are exactly the ones GX counted. On the Spark engine the same masks run on the
executors (``fdp.quality.spark``), and this module builds the report from the flagged rows.

NaN is validated as +inf. The engines disagree on NaN (pandas counts it as missing, so it
passes every range; Spark compares it as larger than any number), and a missing value passes
range rules on both; +inf is a number both compare alike, and no range of the suite admits
it, so a NaN fails on either engine, and fdp's masks see the same value GX does.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl

from fdp.config import Engine, Settings
from fdp.errors import ConfigError, TerminalError
from fdp.quality import splits
from fdp.quality.errors import QualityGateError
from fdp.quality.report import KEYS_IN_REPORT, ExpectationResult, ValidationReport, write_reports
from fdp.quality.suite import Rule, load_suite, read_rules, suite_parameters
from fdp.records import Frame, StockRecord
from fdp.rejected import write_rejected
from fdp.sources.landing import RawZone

_STRINGS = ("symbol", "timestamp", "source_file")
_RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 0}


@dataclass(frozen=True, slots=True)
class Validation:
    """A report, and the rows kept out of the lake (StockRecord + ``rule``, ``reason``)."""

    report: ValidationReport
    rejected: pl.DataFrame


def validate_batch(
    batch: Frame[StockRecord],
    *,
    source: str,
    ingest_date: dt.date,
    suite_path: Path | None = None,
) -> Validation:
    """Validate ``batch`` on the embedded engine (GX on pandas) with the whole suite and
    collect every failure; write nothing."""
    name, rules, _ = read_rules(suite_path)
    data = fill_nan(batch.df)
    flags = row_flags(data, rules)
    gx_results = _pandas_results(data, load_suite(suite_path))
    return assemble(
        name,
        rules,
        gx_results,
        batch.df,
        flags,
        source=source,
        ingest_date=ingest_date,
        engine="polars",
        row_count=batch.df.height,
    )


def fill_nan(rows: pl.DataFrame) -> pl.DataFrame:
    """``rows`` with NaN as +inf: the values validated (see the module's docstring)."""
    return rows.with_columns(pl.selectors.float().fill_nan(math.inf))


def row_flags(data: pl.DataFrame, rules: list[Rule]) -> pl.DataFrame:
    """One column per row-level rule, named for it: True where the rule finds the row of
    ``data`` (NaN filled) unexpected."""
    return data.select(r.unexpected().alias(r.name) for r in rules if r.row_level)


def assemble(
    suite: str,
    rules: list[Rule],
    gx_results: dict[str, Any],
    rows: pl.DataFrame,
    flags: pl.DataFrame,
    *,
    source: str,
    ingest_date: dt.date,
    engine: Engine,
    row_count: int,
) -> Validation:
    """The report and rejected rows from GX's results and fdp's ``flags`` of ``rows`` (the
    batch as received, or only its flagged rows, in batch order), checking on every
    row-level rule that fdp's count is GX's."""
    results = []
    for rule in rules:
        found = gx_results.get(rule.name)
        if found is None:
            raise TerminalError(f"GX returned no result for rule {rule.name!r} of suite {suite}")
        if found.exception_info and found.exception_info.get("raised_exception"):
            msg = found.exception_info.get("exception_message")
            raise TerminalError(f"rule {rule.name} could not be evaluated: {msg}")
        results.append(_result(rule, found, rows, flags))

    reasons = {r.name: r.description for r in rules if r.row_level}
    bad = pl.any_horizontal(flags) if reasons else pl.repeat(False, rows.height)
    rejected = (
        pl.concat([rows, flags], how="horizontal")
        .filter(bad)
        .select(
            *StockRecord.names(),
            pl.concat_str(
                [pl.when(pl.col(n)).then(pl.lit(n)) for n in reasons],
                separator=";",
                ignore_nulls=True,
            ).alias("rule"),
            pl.concat_str(
                [pl.when(pl.col(n)).then(pl.lit(d)) for n, d in reasons.items()],
                separator="; ",
                ignore_nulls=True,
            ).alias("reason"),
        )
        if reasons
        else rows.clear().with_columns(rule=pl.lit(""), reason=pl.lit(""))
    )
    report = ValidationReport(
        suite=suite,
        source=source,
        ingest_date=ingest_date,
        engine=engine,
        validated_at=dt.datetime.now(dt.UTC),
        row_count=row_count,
        rejected_count=rejected.height,
        expectations=results,
    )
    return Validation(report, rejected)


def validate_raw(
    settings: Settings, source: str, ingest_date: dt.date, engine: Engine | None = None
) -> Validation:
    """Validate the raw batch of (source, date) where ``engine`` runs (default: the
    settings'); the report carries the fingerprint of the bytes validated. Writes nothing."""
    engine = engine or settings.engine
    if engine == "spark":
        from fdp.quality.spark import validate_raw_on_spark

        return validate_raw_on_spark(settings, source, ingest_date)
    if engine != "polars":
        raise ConfigError(f"unknown engine {engine!r}; expected polars or spark")
    raw = RawZone(settings).read(source, ingest_date)
    done = validate_batch(raw.rows, source=source, ingest_date=ingest_date)
    kept = raw.rows.df.join(done.rejected, on=["symbol", "timestamp"], how="anti")
    done = with_split_rule(done, splits.held_back(settings, kept))
    return Validation(replace(done.report, fingerprint=raw.fingerprint), done.rejected)


def with_split_rule(done: Validation, found: pl.DataFrame) -> Validation:
    """``done`` with the result of fdp's suspected-split rule (``fdp.quality.splits``), which
    ``found`` these keys among the rows no suite rule rejected; it rejects no row (it holds
    the batch back whole)."""
    result = splits.result(found, done.report.row_count)
    return Validation(
        replace(done.report, expectations=[*done.report.expectations, result]), done.rejected
    )


def run_gate(
    settings: Settings, source: str, ingest_date: dt.date, *, engine: Engine | None = None
) -> ValidationReport:
    """Validate the raw batch of (source, date); keep its rejected rows and reports.

    Writes only the rejected-rows store and the reports, then raises ``QualityGateError``
    if any rule failed beyond its tolerance. Safe to re-run: both are replaced whole.
    """
    done = validate_raw(settings, source, ingest_date, engine)
    write_rejected(settings, "quality", ingest_date, done.rejected, source=source)
    json_url, html_url = write_reports(settings, done.report)
    report = replace(done.report, json_url=json_url, html_url=html_url)
    if not report.success:
        raise QualityGateError(report)
    return report


def _result(rule: Rule, found: Any, rows: pl.DataFrame, flags: pl.DataFrame) -> ExpectationResult:
    res = dict(found.result or {})
    count = res.get("unexpected_count")
    keys: list[tuple[str, str]] = []
    if rule.row_level:
        mine = int(flags[rule.name].sum())
        if count != mine:
            raise TerminalError(
                f"rule {rule.name}: GX counted {count} unexpected rows, fdp's row mask {mine};"
                " fix the rule's translation in fdp.quality.suite"
            )
        keys = (
            rows.filter(flags[rule.name]).select("symbol", "timestamp").head(KEYS_IN_REPORT).rows()
        )
    elif "missing_keys" in res:
        keys = [(s, d) for s, d in res["missing_keys"]]
    observed = res.get("observed_value")
    return ExpectationResult(
        rule=rule.name,
        expectation_type=rule.type,
        columns=rule.columns,
        success=bool(found.success),
        unexpected_count=None if count is None else int(count),
        unexpected_percent=res.get("unexpected_percent"),
        mostly=rule.mostly,
        description=rule.description,
        observed_value=None if observed is None or count is not None else str(observed),
        failing_keys=tuple(keys),
    )


@cache
def _context() -> Any:
    """One ephemeral GX context per process (creating one costs time): no progress bars,
    no usage statistics, nothing written to disk."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


@cache
def _batch_definition(kind: str) -> Any:
    sources = _context().data_sources
    # The Spark batch is a projection of a batch the caller has cached: GX need not persist
    # it again (nor leave it persisted).
    source = (
        sources.add_pandas("fdp_pandas")
        if kind == "pandas"
        else sources.add_spark("fdp_spark", persist=False)
    )
    return source.add_dataframe_asset("batch").add_batch_definition_whole_dataframe("whole")


def gx_results(kind: str, frame: Any, suite: Any) -> dict[str, Any]:
    """GX's result of each rule on ``frame`` (a pandas or a Spark DataFrame), by rule name."""
    batch = _batch_definition(kind).get_batch(batch_parameters={"dataframe": frame})
    outcome = batch.validate(
        suite, result_format=_RESULT_FORMAT, expectation_parameters=suite_parameters()
    )
    return {r.expectation_config.meta.get("rule"): r for r in outcome.results}


def _pandas_results(data: pl.DataFrame, suite: Any) -> dict[str, Any]:
    import pandas as pd

    # Dictionary-encoded strings and pyarrow-backed str in GX's regex path are the same
    # values, many times faster than Python objects (see bench/validate.py). GX copies
    # the whole frame for every column rule (dropna, boolean filter); copy-on-write makes
    # those copies lazy, so a clean batch is never copied at all.
    frame = data.with_columns(pl.col(_STRINGS).cast(pl.Categorical)).to_pandas()
    with pd.option_context("future.infer_string", True, "mode.copy_on_write", True):
        return gx_results("pandas", frame, suite)
