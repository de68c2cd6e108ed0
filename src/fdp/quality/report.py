"""Validation results as fdp sees them, and their JSON and HTML reports.

``ValidationReport.expectations`` holds one ``ExpectationResult`` per rule and batch, the shape
the warehouse's ``dq_results`` table stores. Reports live (one place for the layout) under::

    reports/validation/source=<S>/ingest_date=<D>/validation.{json,html}
"""

from __future__ import annotations

import datetime as dt
import html
import json
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from fdp.config import Settings
from fdp.storage import filesystem, put_bytes

KEYS_IN_REPORT = 1000
"""Failing (symbol, date) keys kept per rule in a report; the rejected store keeps every row."""


@dataclass(frozen=True, slots=True)
class ExpectationResult:
    """One rule's outcome on one batch."""

    rule: str
    expectation_type: str
    columns: tuple[str, ...]
    success: bool
    unexpected_count: int | None
    unexpected_percent: float | None
    mostly: float | None
    description: str
    observed_value: str | None = None
    failing_keys: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """The outcome of the suite on one (source, date) batch."""

    suite: str
    source: str
    ingest_date: dt.date
    engine: str
    validated_at: dt.datetime
    row_count: int
    rejected_count: int
    expectations: list[ExpectationResult] = field(default_factory=list)
    json_url: str | None = None
    html_url: str | None = None
    fingerprint: str = ""
    """The raw batch's fingerprint (``RawBatch.fingerprint``): the transform takes exactly the
    batch that was validated, or validates again."""

    @property
    def success(self) -> bool:
        return all(e.success for e in self.expectations)

    @property
    def failures(self) -> list[ExpectationResult]:
        return [e for e in self.expectations if not e.success]

    @property
    def evaluated_count(self) -> int:
        return len(self.expectations)

    @property
    def successful_count(self) -> int:
        return self.evaluated_count - len(self.failures)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(
            ingest_date=self.ingest_date.isoformat(),
            validated_at=self.validated_at.isoformat(),
            success=self.success,
            evaluated_count=self.evaluated_count,
            successful_count=self.successful_count,
        )
        return out


_ROOT = ("reports", "validation")


def report_dir(settings: Settings, source: str, ingest_date: dt.date) -> str:
    return settings.path(*_ROOT, f"source={source}", f"ingest_date={ingest_date.isoformat()}")


def write_reports(settings: Settings, report: ValidationReport) -> tuple[str, str]:
    """Write the JSON and HTML reports of ``report``; return their URLs."""
    fs, root = filesystem(report_dir(settings, report.source, report.ingest_date))
    json_url, html_url = (
        str(fs.unstrip_protocol(f"{root}/validation.{kind}")) for kind in ("json", "html")
    )
    located = replace(report, json_url=json_url, html_url=html_url)
    put_bytes(fs, f"{root}/validation.html", render_html(located).encode())
    put_bytes(fs, f"{root}/validation.json", json.dumps(located.to_dict(), indent=2).encode())
    return json_url, html_url


def load_report(settings: Settings, source: str, ingest_date: dt.date) -> ValidationReport | None:
    """The report last written for (source, date), or None when the batch was never validated."""
    fs, root = filesystem(report_dir(settings, source, ingest_date))
    path = f"{root}/validation.json"
    if not fs.exists(path):
        return None
    raw = json.loads(fs.cat_file(path))
    expectations = [
        ExpectationResult(
            **{
                **{k: e[k] for k in _RESULT_FIELDS},
                "columns": tuple(e["columns"]),
                "failing_keys": tuple(tuple(k) for k in e["failing_keys"]),
            }
        )
        for e in raw["expectations"]
    ]
    return ValidationReport(
        suite=raw["suite"],
        source=raw["source"],
        ingest_date=dt.date.fromisoformat(raw["ingest_date"]),
        engine=raw["engine"],
        validated_at=dt.datetime.fromisoformat(raw["validated_at"]),
        row_count=raw["row_count"],
        rejected_count=raw["rejected_count"],
        expectations=expectations,
        json_url=raw.get("json_url"),
        html_url=raw.get("html_url"),
        fingerprint=raw.get("fingerprint", ""),
    )


def reports_between(settings: Settings, start: dt.date, end: dt.date) -> list[ValidationReport]:
    """The last report of every batch ingested in [start, end], by date then source: one
    listing of the report tree (an object store answers one listing, not a probe per day).
    A directory that is not a report's (no ``source=``/``ingest_date=`` pair) is not read."""
    fs, root = filesystem(settings.path(*_ROOT))
    batches = []
    for path in fs.glob(f"{root}/source=*/ingest_date=*/validation.json"):
        source, day = (part.split("=", 1)[1] for part in path.split("/")[-3:-1])
        try:
            ingest_date = dt.date.fromisoformat(day)
        except ValueError:
            continue
        if start <= ingest_date <= end:
            batches.append((ingest_date, source))
    found = (load_report(settings, source, day) for day, source in sorted(batches))
    return [r for r in found if r is not None]


_RESULT_FIELDS = [f.name for f in fields(ExpectationResult)]


_CSS = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
    ".pass{color:#1a7f37}.fail{color:#cf222e;font-weight:bold}"
)


def render_html(report: ValidationReport) -> str:
    """A self-contained page: verdict, one row per rule, and the failing keys of each."""
    e = html.escape
    verdict = "PASSED" if report.success else "FAILED"
    rows = []
    for r in report.expectations:
        keys = ", ".join(f"{s} {d}" for s, d in r.failing_keys[:50])
        more = len(r.failing_keys) > 50 or (r.unexpected_count or 0) > len(r.failing_keys)
        rows.append(
            "<tr>"
            f"<td>{e(r.rule)}</td><td>{e(r.description)}</td>"
            f"<td class={'pass' if r.success else 'fail'}>{'pass' if r.success else 'FAIL'}</td>"
            f"<td>{'' if r.unexpected_count is None else r.unexpected_count}</td>"
            f"<td>{'' if r.unexpected_percent is None else f'{r.unexpected_percent:.4g}%'}</td>"
            f"<td>{'' if r.mostly is None else r.mostly}</td>"
            f"<td>{e(keys)}{' …' if more else ''}</td>"
            "</tr>"
        )
    return (
        "<!doctype html><html><head><meta charset=utf-8>"
        f"<title>{e(report.suite)} {e(report.source)} {report.ingest_date}</title>"
        f"<style>{_CSS}</style></head><body>"
        f"<h1>Validation {verdict}: source={e(report.source)} ingest_date={report.ingest_date}</h1>"
        f"<p>suite {e(report.suite)}, engine {e(report.engine)}, validated at"
        f" {report.validated_at.isoformat()}; {report.row_count} rows,"
        f" {report.rejected_count} rejected; {report.successful_count} of"
        f" {report.evaluated_count} rules passed.</p>"
        "<table><tr><th>rule</th><th>meaning</th><th>status</th><th>unexpected</th>"
        "<th>unexpected %</th><th>mostly</th><th>failing keys (symbol date)</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )
