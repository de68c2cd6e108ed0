"""The quality package's errors: a gate that failed, and a transform the gate refuses."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fdp.errors import TerminalError

if TYPE_CHECKING:
    from fdp.quality.report import ValidationReport


class QualityGateError(TerminalError):
    """The batch broke at least one rule beyond its tolerance; ``report`` says which."""

    def __init__(self, report: ValidationReport) -> None:
        self.report = report
        lines = [
            f"quality gate failed for source={report.source} ingest_date={report.ingest_date}:"
            f" {len(report.failures)} of {report.evaluated_count} rules failed"
        ]
        for r in report.failures:
            count = "" if r.unexpected_count is None else f"{r.unexpected_count} unexpected"
            pct = "" if r.unexpected_percent is None else f" ({r.unexpected_percent:.4g}%"
            pct += "" if not pct else (f", mostly {r.mostly})" if r.mostly else ")")
            seen = r.observed_value if r.unexpected_count is None else None
            keys = ", ".join(f"{s} {d}" for s, d in r.failing_keys[:10])
            more = (r.unexpected_count or 0) - min(10, len(r.failing_keys))
            keys += f" (+{more} more)" if keys and more > 0 else ""
            detail = "; ".join(
                x for x in (count + pct, f"observed {seen}" if seen else "", keys) if x
            )
            lines.append(f"  - {r.rule} [{r.description}]: {detail}")
        if report.html_url:
            lines.append(f"  report: {report.html_url}")
        super().__init__(
            "\n".join(lines),
            date=report.ingest_date,
            hint=f"see the report; fix the raw batch, then `fdp validate --date"
            f" {report.ingest_date} --source {report.source}`",
        )


class GateRefusedError(TerminalError):
    """The batch's quality gate failed (or its result does not match the raw batch any more),
    so the transform refuses it."""
