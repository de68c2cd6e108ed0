"""The quality gate as a precondition: a batch is transformed only after a passing validation
of exactly that batch.

A validation report records the fingerprint of the raw objects it validated
(``RawBatch.fingerprint``) and how many rows it rejected. The transform reads the batch and,
before it writes anything, asks ``Gate.admit`` with the fingerprint of the bytes it read: a
passing report of the same bytes admits the batch (its rejected rows stay out of the lake); a
failed one is refused, naming its report, unless the caller overrides it explicitly (the
pipeline records the override); no report, a report of other bytes, or a rejected-rows store
that no longer matches its report runs the validation again first, or is refused when the
caller cannot validate.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from fdp.config import Settings
from fdp.quality.errors import GateRefusedError, QualityGateError
from fdp.quality.report import ValidationReport, load_report, report_dir
from fdp.rejected import read_rejected


@dataclass(frozen=True, slots=True)
class Admission:
    """The gate's yes: the rows it rejected (kept out of the lake), and whether a failed gate
    was overridden."""

    rejected: pl.DataFrame
    overridden: bool


@dataclass(frozen=True, slots=True)
class Gate:
    """How the transform of one (source, date) batch meets the quality gate."""

    settings: Settings
    source: str
    run_date: dt.date
    validate: Callable[[], object] | None = None
    """Runs the validation of the batch (the pipeline's recorded task); ``None``: refuse a
    batch without a current validation instead."""
    override: str | None = None
    """Why a failed batch (or, when the caller cannot validate, an unvalidated one) may be
    transformed anyway; ``None``: never."""

    def admit(self, fingerprint: str) -> Admission:
        """Admit the batch whose bytes have ``fingerprint``, or raise ``GateRefusedError``."""
        report, rejected = self._current(fingerprint)
        if report is None:
            if self.validate is None:
                if self.override is not None:
                    return Admission(rejected.clear(), overridden=True)
                raise self._refusal("has no validation of its current raw objects")
            try:
                self.validate()
            except QualityGateError:
                if self.override is None:
                    raise
            report, rejected = self._current(fingerprint)
            if report is None:
                raise self._refusal("changed while it was being validated")
        if report.success:
            return Admission(rejected, overridden=False)
        if self.override is None:
            raise self._refusal(
                f"failed its quality gate ({len(report.failures)} of {report.evaluated_count}"
                f" rules)",
                hint=f"see {self._report_url()}; fix the raw batch and run `fdp validate --date"
                f" {self.run_date} --source {self.source}`, or transform it anyway with"
                " --override-gate REASON (recorded)",
            )
        return Admission(rejected, overridden=True)

    def _current(self, fingerprint: str) -> tuple[ValidationReport | None, pl.DataFrame]:
        """The report of exactly these bytes, and its rejected rows; ``None`` when there is
        none, or when the rejected-rows store no longer holds what the report counted."""
        report = load_report(self.settings, self.source, self.run_date)
        if report is None or report.fingerprint != fingerprint:
            return None, pl.DataFrame()
        rejected = read_rejected(self.settings, self.run_date, "quality", source=self.source)
        if rejected.height != report.rejected_count:
            return None, rejected
        return report, rejected

    def _refusal(self, why: str, hint: str | None = None) -> GateRefusedError:
        return GateRefusedError(
            f"source={self.source} ingest_date={self.run_date}: the raw batch {why}",
            date=self.run_date,
            hint=hint or f"run `fdp validate --date {self.run_date} --source {self.source}` first",
        )

    def _report_url(self) -> str:
        return f"{report_dir(self.settings, self.source, self.run_date)}/validation.html"
