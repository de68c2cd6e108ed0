"""The quality gate: the Great Expectations suite, its runner, reports and rejected rows.

``run_gate`` is the stage (CLI, DAG); ``accepted_rows`` is what the transform keeps.
"""

from __future__ import annotations

from fdp.quality.errors import GateRefusedError, QualityGateError
from fdp.quality.report import ExpectationResult, ValidationReport
from fdp.quality.runner import Validation, run_gate, validate_batch
from fdp.quality.suite import default_suite_path, load_suite
from fdp.rejected import accepted_rows

__all__ = [
    "ExpectationResult",
    "GateRefusedError",
    "QualityGateError",
    "Validation",
    "ValidationReport",
    "accepted_rows",
    "default_suite_path",
    "load_suite",
    "run_gate",
    "validate_batch",
]
