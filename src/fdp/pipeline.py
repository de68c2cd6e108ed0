"""The pipeline's idempotent tasks, and the runs built from them.

Each task is a function of (settings, run date) that reads and writes only what that date
keys, so the CLI, the tests and the Airflow DAG call the same functions and any task can be
retried, cleared or backfilled. Every task run is also written to ``pipeline_runs``.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from fdp.calendar import sessions
from fdp.config import Settings
from fdp.errors import FdpError, TerminalError

if TYPE_CHECKING:
    from fdp.quality.report import ValidationReport

Stage = Literal["ingest", "validate", "transform", "load", "reconcile"]
STAGES: tuple[Stage, ...] = ("ingest", "validate", "transform", "load", "reconcile")


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


class IngestFailedError(TerminalError):
    """Some symbols could not be landed; the run must not look successful."""


@contextmanager
def _recorded(settings: Settings, stage: Stage, run_date: dt.date) -> Iterator[dict[str, Any]]:
    """Time the body and write its outcome to ``pipeline_runs`` (success or the error)."""
    from fdp.warehouse.connect import connect
    from fdp.warehouse.migrations import migrate
    from fdp.warehouse.observability import PipelineRun, record_pipeline_run

    warehouse = connect(settings.warehouse_url, settings)
    migrate(warehouse)
    started, t0 = dt.datetime.now(dt.UTC), time.perf_counter()
    out: dict[str, Any] = {}

    def record(status: str, error: str | None) -> None:
        record_pipeline_run(
            warehouse,
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
                error=error,
            ),
        )

    try:
        yield out
    except FdpError as exc:
        with suppress(FdpError):
            record("failed", str(exc))
        raise
    out["duration_s"] = time.perf_counter() - t0
    record("success", None)


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


def ingest(
    settings: Settings,
    run_date: dt.date,
    *,
    source: str = "simulator",
    symbols: Sequence[str] | None = None,
) -> TaskResult:
    """Land ``run_date``'s bars of every symbol; fails listing the symbols that did not land."""
    from fdp.errors import TransientError
    from fdp.sources.ingest import ingest as land

    wanted = list(symbols or default_symbols(settings))
    with _recorded(settings, "ingest", run_date) as out:
        outcomes = land(settings, source, wanted, run_date)  # type: ignore[arg-type]
        failed = [o for o in outcomes if not o.ok]
        out.update(rows_in=len(wanted), rows_out=sum(o.rows for o in outcomes))
        if failed:
            detail = "; ".join(f"{o.symbol}: {o.error}" for o in failed)
            message = f"ingest {source} {run_date}: {len(failed)} symbol(s) failed: {detail}"
            if all(o.transient for o in failed):
                raise TransientError(message)
            raise IngestFailedError(message)
    return _result("ingest", run_date, out)


def ingest_history(
    settings: Settings,
    run_date: dt.date,
    *,
    start: dt.date,
    preset: str | None = None,
    symbols: Sequence[str] | None = None,
) -> TaskResult:
    """Land the simulator's bars of [start, run_date] as the one batch of ``run_date``.

    The first load of a symbol wants its history, as a vendor's full download gives it; the
    daily ``ingest`` lands one session.
    """
    from fdp.sources.simulator import land_simulated

    with _recorded(settings, "ingest", run_date) as out:
        summary = land_simulated(
            settings,
            start=start,
            end=run_date,
            ingest_date=run_date,
            symbols=symbols,
            preset=preset,
        )
        out.update(rows_in=summary.symbols, rows_out=summary.rows)
        out["details"] = {"sessions": summary.sessions, "symbols": summary.symbols}
    return _result("ingest", run_date, out)


def validate(settings: Settings, run_date: dt.date, *, source: str = "simulator") -> TaskResult:
    """Run the quality gate on the batch; store its results in ``dq_results`` pass or fail."""
    from fdp.quality.runner import QualityGateError, run_gate

    with _recorded(settings, "validate", run_date) as out:
        try:
            report = run_gate(settings, source, run_date)
        except QualityGateError as exc:
            _store_dq(settings, exc.report)
            out.update(rows_in=exc.report.row_count, rows_rejected=exc.report.rejected_count)
            raise
        _store_dq(settings, report)
        out.update(
            rows_in=report.row_count,
            rows_out=report.row_count - report.rejected_count,
            rows_rejected=report.rejected_count,
            details={"report": report.html_url, "rules": report.evaluated_count},
        )
    return _result("validate", run_date, out)


def _store_dq(settings: Settings, report: ValidationReport) -> None:
    """One ``dq_results`` row per expectation of the batch (replacing the batch's old rows)."""
    from fdp.warehouse.connect import connect
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
    warehouse = connect(settings.warehouse_url, settings)
    record_dq_results(warehouse, report.ingest_date, report.source, rows)


def transform(settings: Settings, run_date: dt.date, *, source: str = "simulator") -> TaskResult:
    """Bring the curated lake up to date with the accepted rows of the batch."""
    from fdp.transform import transform as run_transform

    with _recorded(settings, "transform", run_date) as out:
        done = run_transform(settings, run_date, source=source)
        out.update(
            rows_in=done.rows_in,
            rows_out=done.rows_written,
            rows_rejected=done.rejected,
            details={"partitions_replaced": done.partitions_replaced},
        )
    return _result("transform", run_date, out)


def load(settings: Settings, run_date: dt.date) -> TaskResult:
    """Load the rows the run's transform changed into the warehouse, in one transaction."""
    from fdp.warehouse.loader import load_run

    with _recorded(settings, "load", run_date) as out:
        done = load_run(settings, run_date)
        out.update(rows_in=done.rows, rows_out=done.rows)
    return _result("load", run_date, out)


def reconcile(settings: Settings, run_date: dt.date) -> TaskResult:
    """Fail unless the warehouse rows of the run's keys equal the lake's (counts, checksum)."""
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
    from fdp.warehouse.connect import connect
    from fdp.warehouse.migrations import migrate
    from fdp.warehouse.observability import completed_run_dates

    warehouse = connect(settings.warehouse_url, settings)
    migrate(warehouse)
    return completed_run_dates(warehouse, "reconcile", start, end)


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
    done = set() if force else completed_dates(settings, start, end)
    outcome: dict[dt.date, list[TaskResult] | None] = {}
    for day in sessions(start, end):
        outcome[day] = None if day in done else run(settings, day, source=source, symbols=symbols)
        if on_session is not None:
            on_session(day, outcome[day])
    return outcome
