"""The pipeline's idempotent tasks, and the runs built from them: the one door to every stage.

Each task is a function of (settings, run date), plus options of its own, that reads and writes
only what that date keys, so the CLI's stage commands, ``fdp run``, the tests and the Airflow DAG
call the same functions and any task can be retried, cleared or backfilled. Every task run is
written to ``pipeline_runs`` (its outcome, and on failure the error with where it happened),
whichever entry point ran it; the validation's results go to ``dq_results``. A transform runs
only on a batch that passed its quality gate (``fdp.quality.gate``): without a current
validation it validates first; a failed one is refused unless explicitly overridden, and the
override is recorded.

Arguments are checked before a task starts (which source has a batch, whether a range is the
right way round): a command asked for nothing that exists is a usage error, not a task run.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

from fdp import indicators
from fdp.config import Settings
from fdp.errors import ConfigError, FdpError, TransientError
from fdp.redaction import install_log_redaction, redact

if TYPE_CHECKING:
    from fdp.quality.report import ValidationReport
    from fdp.sources.ingest import IngestOutcome
    from fdp.sources.simulator import SimulationSummary
    from fdp.warehouse.base import Warehouse

Stage = Literal["ingest", "validate", "transform", "load", "reconcile"]
STAGES: tuple[Stage, ...] = get_args(Stage)


@dataclass(frozen=True, slots=True)
class TaskResult:
    """What one task did for one run date: small, JSON-friendly (it is an Airflow XCom)."""

    stage: str
    run_date: dt.date
    rows_in: int = 0
    rows_out: int = 0
    rows_rejected: int = 0
    duration_s: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"run_date": self.run_date.isoformat()}


def _error_details(exc: BaseException) -> dict[str, Any]:
    """What ``pipeline_runs.details`` keeps of a failure: its class and where it happened."""
    found: dict[str, Any] = {"type": type(exc).__name__}
    if isinstance(exc, FdpError):
        found |= exc.details()
    return found


@contextmanager
def _recorded(
    settings: Settings, stage: Stage, run_date: dt.date, **context: Any
) -> Iterator[dict[str, Any]]:
    """Time the body and write its outcome to ``pipeline_runs``: success, or the error (any
    exception, redacted, with its structured fields in ``details``) before it propagates.

    A ``ConfigError`` (bad usage or configuration: the task could not start) is not a task run
    and writes nothing, not even the warehouse file; the warehouse URL is checked first."""
    from fdp.warehouse.connect import connect

    install_log_redaction()
    connect(settings.warehouse_url, settings)
    started, t0 = dt.datetime.now(dt.UTC), time.perf_counter()
    out: dict[str, Any] = {"details": {k: v for k, v in context.items() if v is not None}}

    def record(status: str, error: BaseException | None) -> None:
        from fdp.warehouse.observability import PipelineRun, record_pipeline_run

        details = dict(out["details"])
        if error is not None:
            details["error"] = _error_details(error)
        record_pipeline_run(
            _warehouse(settings),
            PipelineRun(
                stage=stage,
                run_date=run_date,
                run_id=uuid.uuid4().hex,
                status=status,
                started_at=started,
                finished_at=dt.datetime.now(dt.UTC),
                rows_in=out.get("rows_in"),
                rows_out=out.get("rows_out"),
                rows_rejected=out.get("rows_rejected"),
                duration_s=time.perf_counter() - t0,
                error=None if error is None else redact(str(error)) or type(error).__name__,
                details=redact(json.dumps(details, default=str, sort_keys=True)),
            ),
        )

    try:
        yield out
    except ConfigError:
        raise
    except Exception as exc:
        with suppress(Exception):  # the task's own error matters more than the record's
            record("failed", exc)
        raise
    out["duration_s"] = time.perf_counter() - t0
    record("success", None)


def _warehouse(settings: Settings) -> Warehouse:
    """The warehouse that keeps ``pipeline_runs`` and ``dq_results``, its schema current."""
    from fdp.warehouse.connect import connect
    from fdp.warehouse.migrations import migrate

    warehouse = connect(settings.warehouse_url, settings)
    migrate(warehouse)
    return warehouse


def _result(stage: Stage, run_date: dt.date, out: dict[str, Any]) -> TaskResult:
    return TaskResult(
        stage=stage,
        run_date=run_date,
        rows_in=int(out.get("rows_in", 0)),
        rows_out=int(out.get("rows_out", 0)),
        rows_rejected=int(out.get("rows_rejected", 0)),
        duration_s=float(out.get("duration_s", 0.0)),
        details=dict(out.get("details", {})),
    )


def default_symbols(settings: Settings) -> list[str]:
    """The symbols a run covers: ``FDP_SYMBOLS``, else the demo preset's."""
    from fdp.sources.symbols import preset

    return list(settings.symbols) or list(preset("demo").symbols)


def resolve_source(settings: Settings, run_date: dt.date, source: str | None) -> str:
    """The source whose raw batch of ``run_date`` a stage reads: the one named, which must have
    a batch, or, when none is named, the only source that has one."""
    from fdp.sources.layout import batch_sources, has_batch

    if source is not None and has_batch(settings, source, run_date):
        return source
    found = batch_sources(settings, run_date)
    if source is None and len(found) == 1:
        return found[0]
    existing = f"batches of {run_date}: {', '.join(found)}" if found else "no source has one"
    if source is not None:
        raise ConfigError(
            f"no raw batch for source={source} ingest_date={run_date} ({existing})",
            date=run_date,
            hint=f"land it with `fdp ingest --source {source} --date {run_date}`"
            if not found
            else f"pass --source {found[0]}"
            if len(found) == 1
            else "pass --source",
        )
    if not found:
        raise ConfigError(
            f"no raw batch for ingest_date={run_date} ({existing})",
            date=run_date,
            hint="land one with `fdp ingest` or `fdp generate`",
        )
    raise ConfigError(
        f"several sources have a raw batch for ingest_date={run_date}: {', '.join(found)}",
        date=run_date,
        hint="choose one with --source",
    )


def check_range(start: dt.date, end: dt.date) -> None:
    """A range must run forwards."""
    if start > end:
        raise ConfigError(f"the range starts ({start}) after it ends ({end})")


def batches_between(
    settings: Settings, start: dt.date, end: dt.date, source: str | None
) -> tuple[str, list[dt.date]]:
    """The source and the ingest dates in [start, end] whose batches a range transforms: of
    the source named, or of the only source with batches there."""
    from fdp.sources import SOURCES
    from fdp.sources.layout import batch_dates

    check_range(start, end)
    found = {s: batch_dates(settings, s, start, end) for s in ((source,) if source else SOURCES)}
    found = {s: days for s, days in found.items() if days}
    if len(found) == 1:
        return next(iter(found.items()))
    where = f"between {start} and {end}"
    if not found:
        named = f" of source={source}" if source else ""
        raise ConfigError(
            f"no raw batch{named} {where}", hint="land one with `fdp ingest` or `fdp generate`"
        )
    raise ConfigError(
        f"several sources have raw batches {where}: {', '.join(found)}",
        hint="choose one with --source",
    )


def loads_between(settings: Settings, start: dt.date, end: dt.date) -> list[dt.date]:
    """The run dates in [start, end] that have a change manifest to load."""
    from fdp.warehouse.loader import run_dates

    check_range(start, end)
    days = run_dates(settings, start, end)
    if not days:
        raise ConfigError(
            f"no run between {start} and {end} has a change manifest",
            hint="run `fdp transform` for those dates first",
        )
    return days


def ingest(
    settings: Settings,
    run_date: dt.date,
    *,
    source: str = "simulator",
    symbols: Sequence[str] | None = None,
    function: str = "daily",
    outputsize: str = "compact",
    on_outcome: Callable[[IngestOutcome], None] | None = None,
) -> TaskResult:
    """Land ``run_date``'s bars of every symbol; fails listing the symbols that did not land.

    A symbol's failure never stops the others; the run is recorded either way.
    """
    from fdp.sources.errors import IngestFailedError
    from fdp.sources.ingest import ingest as land

    wanted = list(symbols or default_symbols(settings))
    with _recorded(settings, "ingest", run_date, source=source) as out:
        outcomes = land(
            settings,
            source,  # type: ignore[arg-type]
            wanted,
            run_date,
            function=function,  # type: ignore[arg-type]
            outputsize=outputsize,  # type: ignore[arg-type]
            on_outcome=on_outcome,
        )
        _record_vendor_calls(settings, source)
        failed = [o for o in outcomes if not o.ok]
        out.update(rows_in=len(wanted), rows_out=sum(o.rows for o in outcomes))
        out["details"]["failed"] = [o.symbol for o in failed]
        if failed:
            detail = "; ".join(
                str(o.error) if str(o.error).startswith(o.symbol) else f"{o.symbol}: {o.error}"
                for o in failed
            )
            message = f"ingest {source} {run_date}: {len(failed)} symbol(s) failed: {detail}"
            symbol = failed[0].symbol if len(failed) == 1 else None
            if all(o.transient for o in failed):
                raise TransientError(message, date=run_date, symbol=symbol)
            raise IngestFailedError(message, date=run_date, symbol=symbol)
    return _result("ingest", run_date, out)


def _record_vendor_calls(settings: Settings, source: str) -> None:
    """Today's calls to a quota-bound vendor against its daily quota, for the quota alert
    (the count itself is the rate limiter's, kept under the data directory)."""
    from fdp.sources.alpha_vantage import SOURCE, RateLimiter
    from fdp.warehouse.observability import record_vendor_calls

    if source != SOURCE:
        return
    limiter = RateLimiter(settings)
    today = dt.datetime.now(dt.UTC).date()
    record_vendor_calls(_warehouse(settings), SOURCE, today, limiter.calls_today(), limiter.per_day)


def generate(
    settings: Settings,
    run_date: dt.date,
    *,
    start: dt.date,
    end: dt.date | None = None,
    **simulation: Any,
) -> TaskResult:
    """Land the simulator's bars of [start, end] (``end`` defaults to ``run_date``) as the one
    batch of ``run_date``: a vendor's full download, the first load of a history.

    ``simulation`` takes ``fdp.sources.simulator.land_simulated``'s options; with ``output`` (a
    CSV export) nothing lands in the raw zone and nothing is recorded.
    """
    from fdp.sources.simulator import land_simulated

    def land() -> SimulationSummary:
        return land_simulated(
            settings, start=start, end=end or run_date, ingest_date=run_date, **simulation
        )

    if simulation.get("output") is not None:
        return _summary_result(run_date, land(), {})
    with _recorded(settings, "ingest", run_date, source="simulator") as out:
        summary = land()
        out.update(rows_in=summary.symbols, rows_out=summary.rows)
    return _summary_result(run_date, summary, out)


SUMMARY_CLOSES = 20
"""Symbols whose first and last close a ``generate`` result carries (for a summary table)."""


def _summary_result(
    run_date: dt.date, summary: SimulationSummary, out: dict[str, Any]
) -> TaskResult:
    """``out`` (empty for an unrecorded export) with what the simulation landed."""
    details = dict(out.get("details", {})) | {
        "start": summary.start.isoformat(),
        "end": summary.end.isoformat(),
        "symbols": summary.symbols,
        "sessions": summary.sessions,
        "files": len(summary.files),
        "location": summary.files[0].rsplit("/", 1)[0] if summary.files else None,
        "closes": dict(list(summary.closes.items())[:SUMMARY_CLOSES]),
    }
    landed = {"rows_in": summary.symbols, "rows_out": summary.rows, "details": details}
    return _result("ingest", run_date, out | landed)


def validate(
    settings: Settings,
    run_date: dt.date,
    *,
    source: str | None = None,
    engine: str | None = None,
) -> TaskResult:
    """Run the quality gate on the batch; store its results in ``dq_results`` pass or fail."""
    from fdp.quality.errors import QualityGateError
    from fdp.quality.runner import run_gate

    source = resolve_source(settings, run_date, source)
    with _recorded(settings, "validate", run_date, source=source, engine=engine) as out:
        try:
            report = run_gate(settings, source, run_date, engine=engine)  # type: ignore[arg-type]
        except QualityGateError as exc:
            _store_dq(settings, exc.report)
            out.update(rows_in=exc.report.row_count, rows_rejected=exc.report.rejected_count)
            raise
        _store_dq(settings, report)
        out.update(
            rows_in=report.row_count,
            rows_out=report.row_count - report.rejected_count,
            rows_rejected=report.rejected_count,
        )
        out["details"] |= {"report": report.html_url, "rules": report.evaluated_count}
    return _result("validate", run_date, out)


def _store_dq(settings: Settings, report: ValidationReport) -> None:
    """One ``dq_results`` row per expectation of the batch (replacing the batch's old rows)."""
    from fdp.warehouse.observability import DqResult, record_dq_results

    rows = [
        DqResult(
            expectation=e.rule,
            column=",".join(e.columns) or None,
            success=e.success,
            element_count=report.row_count,
            unexpected_count=e.unexpected_count,
            unexpected_percent=e.unexpected_percent,
            observed_value=e.observed_value,
        )
        for e in report.expectations
    ]
    record_dq_results(_warehouse(settings), report.ingest_date, report.source, rows)


def transform(
    settings: Settings,
    run_date: dt.date,
    *,
    source: str | None = None,
    engine: str | None = None,
    override_gate: str | None = None,
) -> TaskResult:
    """Bring the curated lake up to date with the accepted rows of the batch.

    The batch must have passed its quality gate: one never validated (or changed since) is
    validated first; a failed one is refused unless ``override_gate`` says why to go on.
    """
    from fdp.engines import get_engine
    from fdp.quality.gate import Gate
    from fdp.transform import transform as run_transform

    source = resolve_source(settings, run_date, source)
    gate = Gate(
        settings,
        source,
        run_date,
        validate=lambda: validate(settings, run_date, source=source, engine=engine),
        override=override_gate,
    )
    with _recorded(settings, "transform", run_date, source=source, engine=engine) as out:
        chosen = get_engine(engine or settings.engine, settings)
        done = run_transform(settings, run_date, gate=gate, engine=chosen)
        out.update(rows_in=done.rows_in, rows_out=done.rows_written, rows_rejected=done.rejected)
        out["details"] |= {
            "partitions_replaced": done.partitions_replaced,
            "changed_keys": done.changed_keys,
        }
        if done.gate_overridden:
            out["details"]["gate_overridden"] = override_gate
    return _result("transform", run_date, out)


def backfill_indicators(
    settings: Settings,
    names: Sequence[str],
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> list[TaskResult]:
    """Compute ``names`` (indicators added to an existing lake) over its history, write the
    changed rows of [start, end] and load them into the warehouse; over the whole history the
    indicators become maintained by every later run."""
    from fdp.transform.recompute import last_session, recompute

    for name in names:
        indicators.get(name)  # an unknown name is a ConfigError before anything runs
    if start is not None and end is not None:
        check_range(start, end)
    run_date = last_session(settings)
    with _recorded(settings, "transform", run_date, indicators=",".join(names)) as out:
        done = recompute(settings, names, start=start, end=end)
        out.update(rows_in=done.rows_written, rows_out=done.rows_written)
        out["details"] |= {
            "partitions_replaced": done.partitions_replaced,
            "indicators": list(done.indicators),
            "maintained": done.maintained,
        }
    results = [_result("transform", run_date, out)]
    return [*results, load(settings, run_date), reconcile(settings, run_date)]


def transform_on_glue(
    settings: Settings, run_date: dt.date, *, source: str, job_name: str
) -> TaskResult:
    """The transform as a run of AWS Glue job ``job_name`` (``fdp.engines.spark_job``, which
    admits only a batch that passed its gate), recorded like any other."""
    from fdp.orchestration.glue import run_glue_transform

    with _recorded(settings, "transform", run_date, source=source, engine="glue") as out:
        run = run_glue_transform(job_name, run_date, source, region=settings.aws_region)
        out["details"]["glue_run_id"] = run["Id"]
    return _result("transform", run_date, out)


def load(settings: Settings, run_date: dt.date) -> TaskResult:
    """Load the rows the run's transform changed into the warehouse, in one transaction."""
    from fdp.warehouse.loader import load_run

    with _recorded(settings, "load", run_date) as out:
        done = load_run(settings, run_date)
        out.update(rows_in=done.rows, rows_out=done.rows)
        out["details"]["warehouse"] = done.warehouse
    return _result("load", run_date, out)


def reconcile(settings: Settings, run_date: dt.date) -> TaskResult:
    """Fail unless the warehouse rows of the run's keys equal the lake's, row for row."""
    from fdp.warehouse.loader import reconcile_run

    with _recorded(settings, "reconcile", run_date) as out:
        rows = reconcile_run(settings, run_date)
        out.update(rows_in=rows, rows_out=rows)
    return _result("reconcile", run_date, out)


TASKS: dict[Stage, Callable[..., TaskResult]] = {
    "ingest": ingest,
    "validate": validate,
    "transform": transform,
    "load": load,
    "reconcile": reconcile,
}


def run(
    settings: Settings,
    run_date: dt.date,
    *,
    source: str = "simulator",
    symbols: Sequence[str] | None = None,
    skip_ingest: bool = False,
    on_result: Callable[[TaskResult], None] | None = None,
) -> list[TaskResult]:
    """Every stage for one date, in order; the first failure stops the run."""
    results = []
    for stage in STAGES:
        if stage == "ingest" and skip_ingest:
            continue
        if stage == "ingest":
            result = ingest(settings, run_date, source=source, symbols=symbols)
        elif stage in ("validate", "transform"):
            result = TASKS[stage](settings, run_date, source=source)
        else:
            result = TASKS[stage](settings, run_date)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def completed_dates(settings: Settings, start: dt.date, end: dt.date) -> set[dt.date]:
    """Run dates in [start, end] whose last stage (reconcile) succeeded."""
    from fdp.warehouse.observability import completed_run_dates

    return completed_run_dates(_warehouse(settings), "reconcile", start, end)


def backfill(
    settings: Settings,
    start: dt.date,
    end: dt.date,
    *,
    source: str = "simulator",
    symbols: Sequence[str] | None = None,
    force: bool = False,
    on_session: Callable[[dt.date, list[TaskResult] | None], None] | None = None,
) -> dict[dt.date, list[TaskResult] | None]:
    """``run`` for every exchange session in [start, end], oldest first.

    Resumable: a session whose run already completed is skipped (``None``) unless ``force``.
    """
    from fdp.calendar import sessions

    check_range(start, end)
    days = sessions(start, end)
    done = set() if force else completed_dates(settings, start, end)
    outcome: dict[dt.date, list[TaskResult] | None] = {}
    for day in days:
        outcome[day] = None if day in done else run(settings, day, source=source, symbols=symbols)
        if on_session is not None:
            on_session(day, outcome[day])
    return outcome
